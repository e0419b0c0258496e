#pragma once
// The attention normalizer: the one place where Softmax, SSMax and SSMax-with-bias differ.
//
//   softmax:     weights = softmax(q·kᵀ/√d)
//   ssmax:       weights = softmax((s·ln n)·q·kᵀ/√d)
//   ssmax_bias:  weights = softmax((s·ln n + b)·q·kᵀ/√d)
//
// n is the number of keys the query normalises over. In causal attention the query at 0-based
// position t sees n = t+1 keys, so every row has its own factor s·ln(t+1) (not one global n). With
// document masking (attention.h, DocumentLayout) t is the query's position within its own document.
// s and b are learnable scalars per head (learn_s=false freezes s: the paper's variant (c)).
// Because the factor multiplies a whole row of logits, it equals scaling q before q·kᵀ: the same
// (fused, where available) causal attention serves all three normalizers.
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
};

class AttentionNormalizerImpl : public torch::nn::Module {
 public:
  explicit AttentionNormalizerImpl(const NormalizerOptions& options);

  // The per-row factor c[h, t] = s_h·ln(offset+t+1) (+ b_h), shape [n_head, T, 1];
  // undefined for softmax. `offset` is the absolute position of the first query (KV-cache decoding).
  torch::Tensor row_scale(int64_t T, int64_t offset, const torch::TensorOptions& options) const;

  // The same factor for queries at the given positions within their documents: positions [B, T] int64 →
  // c[b, h, t] = s_h·ln(positions[b, t]+1) (+ b_h), shape [B, n_head, T, 1]; undefined for softmax.
  torch::Tensor row_scale_at(const torch::Tensor& positions, const torch::TensorOptions& options) const;

  // q: [B, n_head, T, head_dim] → q scaled per row, ready for softmax(q·kᵀ/√d).
  torch::Tensor scale_queries(const torch::Tensor& q, int64_t offset = 0) const;

  Normalizer kind() const { return options_.kind; }
  const NormalizerOptions& options() const { return options_; }
  torch::Tensor s;  // [n_head]; defined for ssmax and ssmax_bias
  torch::Tensor b;  // [n_head]; defined for ssmax_bias

 private:
  // s·ln n (+ b) for ln n broadcast against [n_head, …]: the formula, written once.
  torch::Tensor factor(const torch::Tensor& log_n, const torch::TensorOptions& options) const;
  NormalizerOptions options_;
};
TORCH_MODULE(AttentionNormalizer);

}  // namespace ssmax
