#pragma once
// The attention normalizer: the one place where Softmax, SSMax, SSMax-with-bias and the length-aware scalings that
// production models derived from SSMax differ. Each multiplies the logits of a query that sees n keys by c(n):
//
//   softmax:     weights = softmax(q·kᵀ/√d)                      c = 1
//   ssmax:       weights = softmax((s·ln n)·q·kᵀ/√d)             c = s·ln n
//   ssmax_bias:  weights = softmax((s·ln n + b)·q·kᵀ/√d)         c = s·ln n + b
//   logn:        c = max(1, ln n / ln L)                  Qwen-1's use_logn_attn (L: logn_length, the training length)
//   llama4:      c = 1 + a·ln(1 + ⌊n / F⌋)                Llama 4's attention temperature (a: attn_scale, F:
//   floor_scale)
//
// n is the number of keys the query normalises over. In causal attention the query at 0-based
// position t sees n = t+1 keys, so every row has its own factor (not one global n). With
// document masking (attention.h, DocumentLayout) t is the query's position within its own document.
// s and b are learnable scalars per head (learn_s=false freezes s: the paper's variant (c)); logn and llama4 have no
// parameters, and may act on the layers without RoPE only (NormalizerOptions::active: Llama 4's layout).
// Because the factor multiplies a whole row of logits, it equals scaling q before q·kᵀ: the same
// (fused, where available) causal attention serves every normalizer.
//
// Pitfalls this form avoids: s=1 is not softmax (only s·ln n = 1 is), and subtracting s·ln n from
// the logits would be a no-op under softmax.
#include <torch/torch.h>

#include "config/config.h"
#include "config/normalizer_kind.h"

namespace ssmax {

struct NormalizerOptions {
  Normalizer kind = Normalizer::Softmax;
  int64_t n_head = 1;
  double s_init = kDefaultSInit;
  bool learn_s = true;
  double b_init = 0.0;
  double logn_length = 256;  // L of logn
  double attn_scale = 0.1;   // a of llama4
  double floor_scale = 256;  // F of llama4
  bool active = true;        // false: this layer computes plain softmax (a scaling limited to the NoPE layers)
};

class AttentionNormalizerImpl : public torch::nn::Module {
 public:
  explicit AttentionNormalizerImpl(const NormalizerOptions& options);

  // The per-row factor c[h, t] = c(n = offset+t+1), shape [n_head, T, 1] ([1, T, 1] for logn and llama4, the same for
  // every head); undefined for softmax. `offset` is the absolute position of the first query (KV-cache decoding).
  torch::Tensor row_scale(int64_t T, int64_t offset, const torch::TensorOptions& options) const;

  // The same factor for queries at the given positions within their documents: positions [B, T] int64 →
  // c[b, h, t] = c(n = positions[b, t]+1), shape [B, n_head, T, 1] ([B, 1, T, 1] without heads); undefined for softmax.
  torch::Tensor row_scale_at(const torch::Tensor& positions, const torch::TensorOptions& options) const;

  // q: [B, n_head, T, head_dim] → q scaled per row, ready for softmax(q·kᵀ/√d).
  torch::Tensor scale_queries(const torch::Tensor& q, int64_t offset = 0) const;

  Normalizer kind() const { return options_.kind; }
  const NormalizerOptions& options() const { return options_; }
  // Whether this layer's logits are scaled at all (not softmax, and active).
  bool scales() const { return options_.kind != Normalizer::Softmax && options_.active; }
  torch::Tensor s;  // [n_head]; defined for ssmax and ssmax_bias
  torch::Tensor b;  // [n_head]; defined for ssmax_bias

 private:
  // c(n) for the key counts n (float, broadcast against [n_head, …]): the formulas above, written once; undefined for
  // softmax.
  torch::Tensor factor(const torch::Tensor& n, const torch::TensorOptions& options) const;
  NormalizerOptions options_;
};
TORCH_MODULE(AttentionNormalizer);

}  // namespace ssmax
