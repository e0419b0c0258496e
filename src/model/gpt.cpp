#include "model/gpt.h"

#include <algorithm>
#include <cmath>

#include "kernels/fused_gelu.h"
#include "kernels/fused_rms_norm.h"
#include "kernels/gemm.h"
#include "kernels/linear_cross_entropy.h"
#include "util/errors.h"

namespace ssmax {
namespace F = torch::nn::functional;

NormImpl::NormImpl(int64_t dim, bool rms, bool bias) : rms_(rms) {
  weight = register_parameter("weight", torch::ones({dim}));
  if (bias && !rms) this->bias = register_parameter("bias", torch::zeros({dim}));
}

torch::Tensor NormImpl::forward(const torch::Tensor& x) {
  if (rms_) return fused_rms_norm(x, weight, 1e-5);
  return torch::layer_norm(x, {x.size(-1)}, weight, bias, 1e-5);
}

MLPImpl::MLPImpl(int64_t n_embd, int64_t hidden, bool swiglu, bool bias, double dropout)
    : swiglu_(swiglu), dropout_(dropout) {
  c_fc = register_module("c_fc", torch::nn::Linear(torch::nn::LinearOptions(n_embd, hidden).bias(bias)));
  if (swiglu)
    c_gate = register_module("c_gate", torch::nn::Linear(torch::nn::LinearOptions(n_embd, hidden).bias(bias)));
  c_proj = register_module("c_proj", torch::nn::Linear(torch::nn::LinearOptions(hidden, n_embd).bias(bias)));
}

torch::Tensor MLPImpl::forward(const torch::Tensor& x) {
  // SwiGLU: proj(silu(gate(x)) ⊙ fc(x)); GPT-2: proj(gelu_tanh(fc(x))).
  auto fc = gemm_linear(x, c_fc->weight, c_fc->bias);
  auto hidden = swiglu_ ? F::silu(gemm_linear(x, c_gate->weight, c_gate->bias)) * fc : fused_gelu_tanh(fc);
  auto y = gemm_linear(hidden, c_proj->weight, c_proj->bias);
  if (is_training() && dropout_ > 0) y = torch::dropout(y, dropout_, true);
  return y;
}

BlockImpl::BlockImpl(const GPTOptions& options, int layer) {
  const auto& m = options.model;
  const bool rms = m.norm == "rmsnorm";
  ln_1 = register_module("ln_1", Norm(m.n_embd, rms, m.bias));
  AttentionOptions attention;
  attention.n_embd = m.n_embd;
  attention.n_head = m.n_head;
  attention.n_kv_head = m.resolved_n_kv_head();
  attention.bias = m.bias;
  attention.dropout = m.dropout;
  attention.rope = m.layer_has_rope(layer);
  attention.rope_theta = m.rope_theta;
  attention.normalizer.kind = m.attention.normalizer;
  attention.normalizer.s_init = m.resolved_s_init();
  attention.normalizer.learn_s = m.attention.learn_s;
  attention.normalizer.b_init = m.attention.b_init;
  attention.normalizer.logn_length = m.resolved_logn_length();
  attention.normalizer.attn_scale = m.attention.attn_scale;
  attention.normalizer.floor_scale = m.resolved_floor_scale();
  attention.normalizer.active = m.layer_is_scaled(layer);
  attn = register_module("attn", CausalSelfAttention(attention));
  ln_2 = register_module("ln_2", Norm(m.n_embd, rms, m.bias));
  mlp = register_module("mlp", MLP(m.n_embd, m.resolved_mlp_hidden(), m.mlp == "swiglu", m.bias, m.dropout));
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x, KVCache* cache, torch::Tensor* weights_out,
                                 const DocumentLayout* documents) {
  auto y = x + attn(ln_1(x), cache, weights_out, documents);
  return y + mlp(ln_2(y));
}

int64_t GPTOptions::padded_vocab_size() const {
  const int64_t multiple = std::max(1, model.vocab_multiple);
  return (vocab_size + multiple - 1) / multiple * multiple;
}

GPTImpl::GPTImpl(const GPTOptions& options) : options_(options) {
  const auto& m = options.model;
  if (options.vocab_size <= 0) throw UsageError("model: vocab_size must be positive (it comes from the tokenizer)");
  wte = register_module("wte", torch::nn::Embedding(options.vocab_size, m.n_embd));
  if (m.position == "learned") wpe = register_module("wpe", torch::nn::Embedding(m.block_size, m.n_embd));
  h = register_module("h", torch::nn::ModuleList());
  for (int i = 0; i < m.n_layer; ++i) h->push_back(Block(options, i));
  ln_f = register_module("ln_f", Norm(m.n_embd, m.norm == "rmsnorm", m.bias));
  if (!m.tie_embeddings)
    lm_head = register_module("lm_head",
                              torch::nn::Linear(torch::nn::LinearOptions(m.n_embd, options.vocab_size).bias(false)));
  init_weights();
  pad_vocabulary();
}

// After initialisation, so the real rows draw exactly the numbers an unpadded model draws. set_data keeps each
// registered parameter (optimizer and checkpoint see one tensor) while giving it the padded shape.
void GPTImpl::pad_vocabulary() {
  const int64_t padding = options_.padded_vocab_size() - options_.vocab_size;
  if (padding == 0) return;
  torch::NoGradGuard no_grad;
  for (auto* head : {&wte->weight, lm_head ? &lm_head->weight : nullptr})
    if (head) head->set_data(torch::cat({*head, torch::zeros({padding, head->size(1)}, head->options())}));
}

// GPT-2 initialisation: N(0, 0.02) for matrices and embeddings, zero biases, and the projections
// that write into the residual stream scaled by 1/√(2·n_layer) so its variance does not grow with depth.
void GPTImpl::init_weights() {
  torch::NoGradGuard no_grad;
  const double residual_std = 0.02 / std::sqrt(2.0 * options_.model.n_layer);
  for (auto& item : named_parameters()) {
    const std::string& name = item.key();
    auto& p = item.value();
    if (name.find("normalizer.") != std::string::npos || name.find("ln_") != std::string::npos) continue;
    bool is_bias = name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    if (is_bias) p.zero_();
    else if (name.find("c_proj.weight") != std::string::npos) p.normal_(0.0, residual_std);
    else p.normal_(0.0, 0.02);
  }
}

torch::Tensor GPTImpl::hidden_states(const torch::Tensor& idx, std::vector<KVCache>* caches,
                                     std::vector<torch::Tensor>* attention_out, const torch::Tensor& positions) {
  const int64_t T = idx.size(1);
  const int64_t offset = caches && !caches->empty() ? (*caches)[0].length() : 0;
  if (wpe && offset + T > options_.model.block_size)
    throw UsageError("sequence of " + std::to_string(offset + T) + " tokens exceeds model.block_size = " +
                     std::to_string(options_.model.block_size) + " (learned positions cannot go further)");
  // Built once for all layers; empty when the model attends across documents or the rows hold one document each.
  const DocumentLayout documents = options_.model.attention.document_mask && positions.defined()
                                       ? DocumentLayout::from_positions(positions.to(idx.device()))
                                       : DocumentLayout{};
  auto x = wte(idx);
  if (wpe)
    x = x + wpe(documents.empty() ? torch::arange(offset, offset + T, idx.options().dtype(torch::kLong))
                                  : documents.positions);
  if (is_training() && options_.model.dropout > 0) x = torch::dropout(x, options_.model.dropout, true);
  if (caches && caches->size() != h->size()) caches->resize(h->size());
  if (attention_out) attention_out->assign(h->size(), torch::Tensor());
  for (size_t i = 0; i < h->size(); ++i)
    x = h[i]->as<Block>()->forward(x, caches ? &(*caches)[i] : nullptr, attention_out ? &(*attention_out)[i] : nullptr,
                                   &documents);
  return ln_f(x);
}

torch::Tensor GPTImpl::forward(const torch::Tensor& idx, std::vector<KVCache>* caches,
                               std::vector<torch::Tensor>* attention_out, const torch::Tensor& positions) {
  auto x = hidden_states(idx, caches, attention_out, positions);
  auto logits = gemm_linear(x, lm_head ? lm_head->weight : wte->weight);
  const int64_t vocab = options_.vocab_size;
  return logits.size(-1) == vocab ? logits : logits.narrow(-1, 0, vocab).contiguous();
}

torch::Tensor GPTImpl::logits_at(const torch::Tensor& idx, const torch::Tensor& rows,
                                 std::vector<torch::Tensor>* attention_out) {
  auto x = hidden_states(idx, nullptr, attention_out);
  x = x.reshape({-1, x.size(-1)}).index_select(0, rows);
  auto logits = gemm_linear(x, lm_head ? lm_head->weight : wte->weight);
  const int64_t vocab = options_.vocab_size;
  return logits.size(-1) == vocab ? logits : logits.narrow(-1, 0, vocab);
}

// The head and the loss fused (linear_cross_entropy.h): the full logits are never made.
torch::Tensor GPTImpl::loss(const torch::Tensor& idx, const torch::Tensor& targets, const torch::Tensor& positions) {
  auto x = hidden_states(idx, nullptr, nullptr, positions);
  const auto& head = lm_head ? lm_head->weight : wte->weight;
  return linear_cross_entropy(x.reshape({-1, x.size(-1)}), head, targets.reshape({-1}), /*chunk_rows=*/0,
                              options_.vocab_size);
}

std::vector<std::pair<std::string, torch::Tensor>> GPTImpl::named_tensors_unpadded() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& item : named_parameters()) {
    const bool vocab_rows = has_vocabulary_rows(item.key());
    out.emplace_back(item.key(), vocab_rows ? item.value().narrow(0, 0, options_.vocab_size) : item.value());
  }
  for (const auto& item : named_buffers()) out.emplace_back(item.key(), item.value());
  return out;
}

void GPTImpl::set_rope_theta(double theta) {
  options_.model.rope_theta = theta;
  for (auto& block : *h) block->as<Block>()->attn->set_rope_theta(theta);
}

int64_t GPTImpl::num_parameters() const {
  int64_t n = 0;
  for (const auto& item : named_parameters()) {
    const bool vocab_rows = has_vocabulary_rows(item.key());
    n += vocab_rows ? options_.vocab_size * item.value().size(1) : item.value().numel();
  }
  return n;
}

double GPTImpl::flops_per_token(int64_t T, double head_share) const {
  double matmul_parameters = static_cast<double>(num_parameters());
  const double head = static_cast<double>(options_.vocab_size) * options_.model.n_embd;
  if (wpe) matmul_parameters -= static_cast<double>(wpe->weight.numel());
  if (lm_head) matmul_parameters -= head;  // the embedding: a lookup
  matmul_parameters -= head * (1 - head_share);
  const auto& m = options_.model;
  return 6.0 * matmul_parameters + 12.0 * m.n_layer * m.n_embd * static_cast<double>(T);
}

}  // namespace ssmax
