#pragma once
// GELU with the tanh approximation as one hand-written elementwise kernel:
//   y = 0.5·x·(1 + tanh(u)),  u = √(2/π)·(x + 0.044715·x³),
//   dy/dx = 0.5·(1 + t) + 0.5·x·(1 − t²)·√(2/π)·(1 + 3·0.044715·x²),  t = tanh(u).
//
// ATen's CPU kernel spends its time in Sleef's 1-ulp tanh (~10 ms forward, ~15 ms backward for a [4096, 1024] float
// activation on two AVX2 cores); training needs nothing like that. Here 1 + tanh(u) = 2σ(2u), σ(z) = 1 / (1 + e^−z),
// with a short exp polynomial:
//   y = x·σ(2u),  dy/dx = σ + 2·x·σ·(1 − σ)·du/dx.
// That is as cheap as a rational tanh, and it does not cancel for negative x as 1 + tanh does in float: y and dy/dx
// stay within a few ulps of the exact formula over the whole range, while ATen's float kernel loses all relative
// accuracy below x ≈ −5. The limits are exact (y = x and dy/dx = 1 for large x, both 0 below x ≈ −10 and at ±inf); NaN
// stays NaN.
//
// The fast path is float32 on the CPU (any strides; x is made contiguous), compiled twice: for AVX2 with FMA, picked at
// run time where the CPU has both, and for baseline x86-64. The two may differ in the last bits (FMA rounds once); on a
// given machine results do not depend on the thread count. Everything else (CUDA, bf16/half, double) runs
// torch::gelu(x, "tanh"), so there is one call site for every device; a backward with create_graph runs ATen's
// differentiable gelu_backward.
#include <torch/torch.h>

namespace ssmax {

// x: any shape. Differentiable.
torch::Tensor fused_gelu_tanh(const torch::Tensor& x);

}  // namespace ssmax
