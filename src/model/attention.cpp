#include "model/attention.h"

#include <cmath>

namespace ssmax {

torch::Tensor causal_attention_prescaled(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                         double dropout, bool training, torch::Tensor* weights_out) {
  const int64_t Tq = q.size(2), Tk = k.size(2);
  const double p = training ? dropout : 0.0;
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
  // Key j is hidden from query i when j > i + (Tk - Tq).
  auto mask = torch::ones({Tq, Tk}, torch::TensorOptions().dtype(torch::kBool).device(q.device())).triu(Tk - Tq + 1);
  scores.masked_fill_(mask, -std::numeric_limits<float>::infinity());
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
  c_attn = register_module(
      "c_attn", torch::nn::Linear(torch::nn::LinearOptions(options.n_embd, 3 * options.n_embd).bias(options.bias)));
  c_proj = register_module(
      "c_proj", torch::nn::Linear(torch::nn::LinearOptions(options.n_embd, options.n_embd).bias(options.bias)));
  auto normalizer_options = options.normalizer;
  normalizer_options.n_head = options.n_head;
  normalizer = register_module("normalizer", AttentionNormalizer(normalizer_options));
}

// Rotary embedding, "rotate half" convention: the pair (x[i], x[i + d/2]) rotates by angle
// pos·θ^(-2i/d). Computed in float32 for the positions in use, so any θ or length works at eval time.
torch::Tensor CausalSelfAttentionImpl::apply_rope(const torch::Tensor& x, int64_t offset) const {
  const int64_t T = x.size(2), half = x.size(3) / 2;
  auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(x.device());
  auto inv_freq = torch::pow(options_.rope_theta, -torch::arange(0, half, f32) / static_cast<double>(half));
  auto angles = torch::outer(torch::arange(offset, offset + T, f32), inv_freq);
  auto cos = angles.cos().to(x.dtype()), sin = angles.sin().to(x.dtype());
  auto x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  return torch::cat({x1 * cos - x2 * sin, x1 * sin + x2 * cos}, -1);
}

torch::Tensor CausalSelfAttentionImpl::forward(const torch::Tensor& x, KVCache* cache, torch::Tensor* weights_out) {
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2), H = options_.n_head;
  const int64_t offset = cache ? cache->length() : 0;
  auto qkv = c_attn(x).view({B, T, 3, H, C / H}).permute({2, 0, 3, 1, 4});  // [3, B, H, T, hd]
  auto q = qkv[0], k = qkv[1], v = qkv[2];
  if (options_.rope) {
    q = apply_rope(q, offset);
    k = apply_rope(k, offset);
  }
  // One pass over q applies both 1/√d and the normalizer's per-row factor c[h, t].
  const double inv_sqrt_d = 1.0 / std::sqrt(static_cast<double>(C / H));
  auto row_scale = normalizer->row_scale(T, offset, q.options());
  q = row_scale.defined() ? q * (row_scale * inv_sqrt_d) : q * inv_sqrt_d;
  q = q.to(k.dtype());  // the factor is float32; under bf16 autocast q must stay in k's dtype for the kernel
  if (cache) {
    if (cache->k.defined()) {
      k = torch::cat({cache->k, k}, 2);
      v = torch::cat({cache->v, v}, 2);
    }
    cache->k = k;
    cache->v = v;
  }
  auto y = causal_attention_prescaled(q, k, v, options_.dropout, is_training(), weights_out);
  y = y.transpose(1, 2).contiguous().view({B, T, C});
  y = c_proj(y);
  if (is_training() && options_.dropout > 0) y = torch::dropout(y, options_.dropout, true);
  return y;
}

}  // namespace ssmax
