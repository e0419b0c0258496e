#include "model/attention.h"

#include <cmath>
#include <tuple>

#include "kernels/gemm.h"
#include "kernels/qkv_rope.h"

namespace ssmax {

DocumentLayout DocumentLayout::from_positions(const torch::Tensor& positions) {
  TORCH_CHECK(positions.dim() == 2 && positions.scalar_type() == torch::kLong,
              "document positions must be [B, T] int64, got ", positions.sizes(), " ", positions.scalar_type());
  const int64_t T = positions.size(1);
  auto index = torch::arange(T, positions.options());
  // A batch without a document start after its first token is the plain causal case: no mask to build or apply.
  // The loader says so by giving no positions (data/loader.h); asking a GPU here would wait for it every forward.
  if (positions.is_cpu() && positions.eq(index).all().item<bool>()) return {};
  auto query = index.view({1, T, 1}), key = index.view({1, 1, T});
  auto first_key = (index.view({1, T}) - positions).unsqueeze(-1);  // where each query's document starts
  return {positions, ((key <= query) & (key >= first_key)).unsqueeze(1)};
}

torch::Tensor causal_attention_prescaled(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                         double dropout, bool training, torch::Tensor* weights_out,
                                         const torch::Tensor& visible) {
  const int64_t Tq = q.size(2), Tk = k.size(2);
  const double p = training ? dropout : 0.0;
  if (visible.defined()) {
    TORCH_CHECK(Tq == Tk, "a document mask needs as many queries as keys (no KV cache)");
    // One call with the mask, not one causal call per document: on CPU the mask won at every document length tried,
    // as per-document calls pay a dispatch each (scripts/bench_document_mask.py; docs/documents.md).
    if (!weights_out) return torch::scaled_dot_product_attention(q, k, v, visible, p, /*is_causal=*/false, 1.0);
  }
  if (!weights_out) {
    // Fused kernels never materialise the Tq×Tk scores. is_causal aligns the mask top-left, right only
    // without a cache prefix; one new query sees every key; a longer chunk after a prefix needs the mask.
    if (Tq == Tk) return torch::scaled_dot_product_attention(q, k, v, {}, p, /*is_causal=*/true, /*scale=*/1.0);
    if (Tq == 1) return torch::scaled_dot_product_attention(q, k, v, {}, p, /*is_causal=*/false, /*scale=*/1.0);
    auto visible = torch::ones({Tq, Tk}, torch::TensorOptions().dtype(torch::kBool).device(q.device())).tril(Tk - Tq);
    return torch::scaled_dot_product_attention(q, k, v, visible, p, /*is_causal=*/false, /*scale=*/1.0);
  }
  // The attention probe asks for the weights themselves: the explicit path.
  auto scores = torch::matmul(q, k.transpose(-2, -1)).to(torch::kFloat32);
  // Key j is hidden from query i when j > i + (Tk - Tq), or when it lies outside the query's document.
  auto hidden =
      visible.defined()
          ? visible.logical_not()
          : torch::ones({Tq, Tk}, torch::TensorOptions().dtype(torch::kBool).device(q.device())).triu(Tk - Tq + 1);
  scores.masked_fill_(hidden, -std::numeric_limits<float>::infinity());
  auto weights = torch::softmax(scores, -1);
  *weights_out = weights.detach();
  weights = weights.to(v.dtype());
  if (p > 0) weights = torch::dropout(weights, p, true);
  return torch::matmul(weights, v);
}

torch::Tensor causal_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double dropout,
                               bool training, torch::Tensor* weights_out) {
  return causal_attention_prescaled(q * (1.0 / std::sqrt(static_cast<double>(q.size(-1)))), k, v, dropout, training,
                                    weights_out);
}

CausalSelfAttentionImpl::CausalSelfAttentionImpl(const AttentionOptions& options) : options_(options) {
  // Rows of c_attn: q (n_head heads), then k and v (n_kv_head heads each); 3·n_embd without grouping.
  const int64_t head_dim = options.n_embd / options.n_head;
  const int64_t qkv_rows = options.n_embd + 2 * kv_heads() * head_dim;
  c_attn = register_module("c_attn",
                           torch::nn::Linear(torch::nn::LinearOptions(options.n_embd, qkv_rows).bias(options.bias)));
  c_proj = register_module(
      "c_proj", torch::nn::Linear(torch::nn::LinearOptions(options.n_embd, options.n_embd).bias(options.bias)));
  auto normalizer_options = options.normalizer;
  normalizer_options.n_head = options.n_head;
  normalizer = register_module("normalizer", AttentionNormalizer(normalizer_options));
}

// Rotary embedding, "rotate half" convention (qkv_rope.h): cos and sin [T, head_dim/2] of the angle
// pos·θ^(-2i/d) for the positions in use, computed in float32 so any θ or length works at eval time.
std::pair<torch::Tensor, torch::Tensor> CausalSelfAttentionImpl::rope_tables(int64_t T, int64_t offset,
                                                                             const torch::TensorOptions& options) {
  auto& c = rope_cache_;
  if (c.T == T && c.offset == offset && c.theta == options_.rope_theta && c.options.device() == options.device() &&
      c.options.dtype() == options.dtype())
    return {c.cos, c.sin};
  const int64_t half = options_.n_embd / options_.n_head / 2;
  auto f32 = options.dtype(torch::kFloat32);
  auto inv_freq = torch::pow(options_.rope_theta, -torch::arange(0, half, f32) / static_cast<double>(half));
  auto angles = torch::outer(torch::arange(offset, offset + T, f32), inv_freq);
  c = {T, offset, options_.rope_theta, options, angles.cos().to(options.dtype()), angles.sin().to(options.dtype())};
  return {c.cos, c.sin};
}

std::pair<torch::Tensor, torch::Tensor> CausalSelfAttentionImpl::rope_tables_at(const torch::Tensor& positions,
                                                                                const torch::TensorOptions& options) {
  // A position within a document is below T, so the rows of the table for 0 … T-1 serve every document.
  auto [cos, sin] = rope_tables(positions.size(1), 0, options);
  return {cos.index({positions}), sin.index({positions})};
}

torch::Tensor CausalSelfAttentionImpl::forward(const torch::Tensor& x, KVCache* cache, torch::Tensor* weights_out,
                                               const DocumentLayout* documents) {
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2), H = options_.n_head;
  const int64_t offset = cache ? cache->length() : 0;
  const bool packed = documents && !documents->empty();
  TORCH_CHECK(!(packed && cache), "a document layout and a KV cache do not go together (decoding is one document)");
  auto qkv = gemm_linear(x, c_attn->weight, c_attn->bias);
  torch::Tensor cos, sin;
  if (options_.rope)
    std::tie(cos, sin) =
        packed ? rope_tables_at(documents->positions, qkv.options()) : rope_tables(T, offset, qkv.options());
  // q carries both 1/√d and the normalizer's per-row factor c[h, t], applied in the same pass as the rotation.
  const double inv_sqrt_d = 1.0 / std::sqrt(static_cast<double>(C / H));
  // The factor in at least float32 (under bf16 autocast qkv is bf16; the factor keeps its precision).
  auto factor = qkv.options().dtype(at::promote_types(qkv.scalar_type(), torch::kFloat32));
  auto row_scale =
      packed ? normalizer->row_scale_at(documents->positions, factor) : normalizer->row_scale(T, offset, factor);
  auto q_scale = row_scale.defined() ? row_scale.squeeze(-1) * inv_sqrt_d : torch::full({1, 1}, inv_sqrt_d, factor);
  const int64_t H_kv = kv_heads();
  auto [q, k, v] =
      H_kv == H ? split_heads(qkv, H, cos, sin, q_scale) : split_heads_grouped(qkv, H, H_kv, cos, sin, q_scale);
  if (cache) {
    if (cache->k.defined()) {
      k = torch::cat({cache->k, k}, 2);
      v = torch::cat({cache->v, v}, 2);
    }
    cache->k = k;
    cache->v = v;
  }
  if (H_kv != H) {
    // Query head h reads key/value head h / (H / H_kv): Hugging Face Llama's repeat_kv. The cache keeps the
    // H_kv heads; the copies exist only for this call.
    k = k.repeat_interleave(H / H_kv, 1);
    v = v.repeat_interleave(H / H_kv, 1);
  }
  auto y = causal_attention_prescaled(q, k, v, options_.dropout, is_training(), weights_out,
                                      packed ? documents->visible : torch::Tensor());
  y = y.transpose(1, 2).contiguous().view({B, T, C});
  y = gemm_linear(y, c_proj->weight, c_proj->bias);
  if (is_training() && options_.dropout > 0) y = torch::dropout(y, options_.dropout, true);
  return y;
}

}  // namespace ssmax
