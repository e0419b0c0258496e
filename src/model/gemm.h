#pragma once
// Float32 matrix products on the CPU through OpenBLAS (Debian's OpenMP build), the rest through ATen.
//
// Why: LibTorch's CPU matmuls are MKL's sgemm, which on this project's AMD 2-core machines runs the model's shapes
// ([4096, 256] × [256, 768 | 1024 | 4096], [4096, 1024] × [1024, 256]) at 65–115 GFLOP/s; OpenBLAS 0.3.21 at 75–145,
// about 20 % more on the shapes that dominate a step (measured side by side, best of 5, 2 threads). Matmuls are ~70 %
// of a CPU training step; `SSMAX_UNFUSED=gemm ssmax-gpt bench …` against plain `bench` shows what it buys.
//
// How: libopenblas.so.0 of the openmp variant (package libopenblas0-openmp) is opened with dlopen(RTLD_LOCAL), so its
// sgemm_ never interposes on the one inside libtorch_cpu, and it threads on the OpenMP runtime libtorch already
// loaded (one libgomp, one pool; its thread count follows at::set_num_threads, and it runs on one thread inside a
// parallel region). The serial and pthread variants are not used: the serial build is not safe to call from several
// threads, the pthread build would add a second pool spinning against OpenMP's. When the library is absent (another
// distribution, the GPU machine), or SSMAX_UNFUSED names "gemm", every product runs ATen's mm: the same maths,
// other rounding. On a given machine and thread count the results are the same from run to run.
#include <torch/torch.h>

#include <string>

namespace ssmax {

// c = a·b, or c += a·b when accumulate. a [M, K] and b [K, N] may be transposed views of contiguous tensors; c is
// a contiguous [M, N]. Any dtype and device: only CPU float32 goes to OpenBLAS.
void gemm_out(torch::Tensor& c, const torch::Tensor& a, const torch::Tensor& b, bool accumulate = false);

// y = x·weightᵀ (+ bias), x [..., in], weight [out, in], bias [out] or undefined. Differentiable; its backward uses
// gemm_out too. Equal to torch::nn::functional::linear up to the matmul's rounding.
torch::Tensor gemm_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias = {});

// Where matrix products run: "OpenBLAS <version> (<path>)" or "ATen (<why>)". For logs and bench.
std::string gemm_backend();

}  // namespace ssmax
