#pragma once
// From the fused projection qkv = x·W_attnᵀ to the three head tensors attention wants, in one pass:
//
//   q[b,h,t,:] = rope(qkv[b,t,  0 + h·d : …], t) · q_scale[h,t]
//   k[b,h,t,:] = rope(qkv[b,t,  C + h·d : …], t)
//   v[b,h,t,:] =      qkv[b,t, 2C + h·d : …]
//
// rope is the "rotate half" rotation: (x[i], x[i+d/2]) → (x[i]·cos − x[i+d/2]·sin, x[i]·sin + x[i+d/2]·cos)
// with cos/sin[t, i] of angle pos_t·θ^(-2i/d). q_scale carries 1/√d and the normalizer's per-row factor
// (normalizer.h), so the attention kernel sees q already scaled.
//
// Why fused: the composite form (view, permute, select, cos/sin products, cat, a multiply) makes about a dozen
// passes over activations forward and more backward (select's backward zero-fills the whole qkv three times).
// On CPU with float32 this is one pass each way; elsewhere (CUDA, bf16) it is the composite form, so both
// devices share one code path and the composite is the reference the kernel is tested against.
#include <torch/torch.h>

namespace ssmax {

struct HeadTensors {
  torch::Tensor q, k, v;  // [B, n_head, T, head_dim], contiguous
};

// qkv: [B, T, 3C]. cos, sin: [T, head_dim/2] float32, or undefined for no rotation. q_scale: float32,
// broadcastable to [n_head, T] (e.g. [n_head, T], [1, 1]); differentiable (the normalizer's s and b learn
// through it).
HeadTensors split_heads(const torch::Tensor& qkv, int64_t n_head, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& q_scale);

// The composite form of split_heads (ATen ops, autograd through each): the fallback and the tests' reference.
HeadTensors split_heads_composite(const torch::Tensor& qkv, int64_t n_head, const torch::Tensor& cos,
                                  const torch::Tensor& sin, const torch::Tensor& q_scale);

// Grouped-query attention: qkv is [B, T, (n_head + 2·n_kv_head)·head_dim] (q rows, then k, then v); k and v come
// back with n_kv_head heads. Composite ATen ops only: the fused kernel serves the ungrouped layout.
HeadTensors split_heads_grouped(const torch::Tensor& qkv, int64_t n_head, int64_t n_kv_head, const torch::Tensor& cos,
                                const torch::Tensor& sin, const torch::Tensor& q_scale);

}  // namespace ssmax
