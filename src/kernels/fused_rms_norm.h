#pragma once
// RMSNorm as one hand-written kernel:  y = x · rsqrt(mean(x², last dim) + eps) · weight.
//
// The composite ATen expression costs about ten memory passes and as many temporaries per call, forward and backward;
// on a small CPU that is most of the norm's time. The fused kernel reads each row once per pass and keeps the per-row
// rstd for the backward:
//   r = rsqrt(mean(x²) + eps),  gw = grad·weight,
//   dx = r · (gw − x · r² · mean(gw · x)),  dweight = Σ_rows grad · x · r.
// dweight is summed over fixed row chunks in a fixed order, so results are bit-identical for any thread count.
//
// The fast path is float32 on the CPU (any strides; x is made contiguous). Everything else (CUDA, bf16/half, double)
// runs the composite expression itself, so there is one call site for every device; a backward with create_graph
// evaluates the formulas above as differentiable ATen ops.
#include <torch/torch.h>

namespace ssmax {

// x: [..., C]; weight: [C]. Differentiable in x and weight.
torch::Tensor fused_rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);

}  // namespace ssmax
