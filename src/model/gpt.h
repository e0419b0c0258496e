#pragma once
// The GPT: token (+ learned position) embeddings, n_layer pre-norm blocks, final norm, LM head.
// GPT-2 by default (LayerNorm, GELU MLP, tied embeddings, learned positions); the config's options
// give the paper's Llama-like block (RMSNorm, SwiGLU, untied, RoPE), no position encoding at all (NoPE), or RoPE
// with every k-th layer left without (Llama 4's iRoPE).
#include <torch/torch.h>

#include <vector>

#include "config/config.h"
#include "model/attention.h"

namespace ssmax {

struct GPTOptions {
  ModelConfig model;
  int64_t vocab_size = 0;  // the tokenizer's: targets, logits and exports have this many classes

  // Rows of the embedding and the head: vocab_size rounded up to model.vocab_multiple, because a GPU's matrix
  // units want aligned shapes (GPT-2's 50257 → 50304). The extra rows start at zero and are sliced off the logits
  // before anything reads them, so they never get a gradient either (weight decay keeps them at zero).
  int64_t padded_vocab_size() const;
};

class NormImpl : public torch::nn::Module {
 public:
  NormImpl(int64_t dim, bool rms, bool bias);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;

 private:
  bool rms_;
};
TORCH_MODULE(Norm);

class MLPImpl : public torch::nn::Module {
 public:
  MLPImpl(int64_t n_embd, int64_t hidden, bool swiglu, bool bias, double dropout);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Linear c_fc{nullptr}, c_gate{nullptr}, c_proj{nullptr};

 private:
  bool swiglu_;
  double dropout_;
};
TORCH_MODULE(MLP);

class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(const GPTOptions& options, int layer);  // layer: 0-based (which layers rotate: ModelConfig::layer_has_rope)
  torch::Tensor forward(const torch::Tensor& x, KVCache* cache = nullptr, torch::Tensor* weights_out = nullptr,
                        const DocumentLayout* documents = nullptr);
  Norm ln_1{nullptr}, ln_2{nullptr};
  CausalSelfAttention attn{nullptr};
  MLP mlp{nullptr};
};
TORCH_MODULE(Block);

class GPTImpl : public torch::nn::Module {
 public:
  // Initialises weights from the current torch RNG (seed it first for reproducible models).
  explicit GPTImpl(const GPTOptions& options);

  // idx: [B, T] token ids → logits [B, T, vocab_size] (padding rows dropped). With caches (one per layer) decoding
  // continues at position caches[0].length(); `attention_out` (optional) receives each layer's attention weights.
  // `positions` ([B, T] int64, each token's position within its document; data/loader.h makes them) packs several
  // documents into a row: each then computes what it computes alone (attention.h, DocumentLayout). Undefined, or
  // with model.attention.document_mask false: the row is one sequence.
  torch::Tensor forward(const torch::Tensor& idx, std::vector<KVCache>* caches = nullptr,
                        std::vector<torch::Tensor>* attention_out = nullptr, const torch::Tensor& positions = {});

  // The final normalised hidden states [B, T, n_embd] (what the head multiplies); arguments as forward's.
  torch::Tensor hidden_states(const torch::Tensor& idx, std::vector<KVCache>* caches = nullptr,
                              std::vector<torch::Tensor>* attention_out = nullptr, const torch::Tensor& positions = {});

  // The logits [N, vocab_size] at some positions only: `rows` [N] int64, flat indices b·T + t into idx [B, T]. A task
  // whose loss is on a few answers (data/recall_task.h) runs the head on those rows alone.
  // `attention_out` as forward's.
  torch::Tensor logits_at(const torch::Tensor& idx, const torch::Tensor& rows,
                          std::vector<torch::Tensor>* attention_out = nullptr);

  // Mean cross-entropy of next-token prediction; the logits are made a chunk of rows at a time.
  torch::Tensor loss(const torch::Tensor& idx, const torch::Tensor& targets, const torch::Tensor& positions = {});

  // Whether a parameter has one row per vocabulary entry (padding included): the embedding and the untied head.
  static bool has_vocabulary_rows(const std::string& name) { return name == "wte.weight" || name == "lm_head.weight"; }

  // Every parameter and buffer by name, the embedding and head cut to vocab_size rows: what leaves the program.
  std::vector<std::pair<std::string, torch::Tensor>> named_tensors_unpadded() const;

  void set_rope_theta(double theta);
  const GPTOptions& options() const { return options_; }
  int64_t num_parameters() const;  // vocabulary padding not counted: the model's size, not the allocation's
  // Model FLOPs of training on one token with a context of T (PaLM's and nanoGPT's count):
  //   6·N + 12·n_layer·n_embd·T
  // N = parameters that take part in matrix products (embedding lookups excluded, a tied wte counted once as
  // the output layer); 6 = 2 FLOPs per multiply-add × (forward + 2× backward); the second term is q·kᵀ and
  // weights·v over all T keys (causal masking not subtracted, as in those counts).
  // `head_share`: the share of positions the head runs on (1 for next-token prediction; a task whose loss is on a
  // few answers runs it on those rows alone, logits_at), the head's 6·vocab·n_embd counted for that share.
  double flops_per_token(int64_t T, double head_share = 1.0) const;

  torch::nn::Embedding wte{nullptr}, wpe{nullptr};
  torch::nn::ModuleList h{nullptr};
  Norm ln_f{nullptr};
  torch::nn::Linear lm_head{nullptr};  // absent when tied: logits use wte.weight

 private:
  void init_weights();
  void pad_vocabulary();
  GPTOptions options_;
};
TORCH_MODULE(GPT);

}  // namespace ssmax
