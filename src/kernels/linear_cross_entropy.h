#pragma once
// The LM head and its loss in one step. F::cross_entropy(F::linear(x, W), targets) on the CPU materialises the
// N×V logits, their log-softmax and two more N×V tensors in backward: several passes over memory and big fresh
// allocations per step. Here the logits are made a chunk of rows at a time in one reused buffer, each row turned
// into its gradient in place while it is still in cache, and dx, dW accumulated chunk by chunk: the same matmul
// FLOPs, none of the full-size passes, and a peak of one chunk plus dW instead of several N×V tensors.
#include <torch/torch.h>

namespace ssmax {

// Mean over rows of cross_entropy(x · weightᵀ, targets), without the full logits. x [N, C], weight [V, C],
// targets [N] int64 in [0, V) (no ignore_index: an out-of-range target throws). Differentiable in x and weight;
// gradients are computed during the forward pass when grad mode is on and x or weight requires grad.
// Float32 CPU tensors take the fused float32 kernel; under CPU autocast (bf16) — and on CUDA when
// use_chunked_loss_on_cuda(true) — the chunked form below in the autocast dtype; anything else (double, CUDA by
// default) the composite above. chunk_rows > 0 forces the rows per chunk (tests); 0 picks it from V.
// classes > 0: only the first `classes` rows of weight are classes (the rest is vocabulary padding, model/gpt.h):
// their logits never enter the softmax and their gradient rows are zero; targets must be < classes.
torch::Tensor linear_cross_entropy(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& targets,
                                   int64_t chunk_rows = 0, int64_t classes = 0);

// The rows per chunk the fused path takes for N rows and V classes when chunk_rows is 0.
int64_t linear_cross_entropy_chunk_rows(int64_t N, int64_t V);

// The same loss on any device, a chunk of rows at a time in ATen operations (kernels/chunked_cross_entropy.cpp): the
// products in `compute_dtype` (bf16 under autocast), the softmax and the loss in float32; returns a float32 loss.
torch::Tensor chunked_linear_cross_entropy(const torch::Tensor& x, const torch::Tensor& weight,
                                           const torch::Tensor& targets, at::ScalarType compute_dtype,
                                           int64_t chunk_rows = 0, int64_t classes = 0);

// Off by default until a GPU run has measured and checked it (train.cuda_chunked_loss): the chunked form on CUDA.
void use_chunked_loss_on_cuda(bool on);

}  // namespace ssmax
