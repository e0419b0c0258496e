#pragma once
// Float32 matrix products on the CPU through one of two libraries, chosen per machine (train/cpu_blas.h):
// OpenBLAS (Debian's OpenMP build) or ATen's own (MKL in the PyPI wheel). Everything else runs through ATen.
//
// Why two: which is faster depends on the CPU. On this project's AMD EPYC 2-core machines OpenBLAS 0.3.21 (Haswell
// kernels) ran the model's shapes ([4096, 256] × [256, 768 | 1024 | 4096], [4096, 1024] × [1024, 256]) about 20 %
// faster than MKL; on an Intel Xeon with AVX-512 and AMX the same OpenBLAS ran its generic Prescott (SSE3) kernels at a
// fraction of MKL's speed. Matmuls are ~70 % of a CPU training step. The choice is a measurement, never a constant.
//
// How: libopenblas.so.0 of the openmp variant (package libopenblas0-openmp) is opened with dlopen(RTLD_LOCAL), so its
// sgemm_ never interposes on the one inside libtorch_cpu, and it threads on the OpenMP runtime libtorch already
// loaded (one libgomp, one pool; its thread count follows at::set_num_threads, and it runs on one thread inside a
// parallel region). The serial and pthread variants are not used: the serial build is not safe to call from several
// threads, the pthread build would add a second pool spinning against OpenMP's. When the library is absent (another
// distribution, the GPU machine), is not chosen, or SSMAX_UNFUSED names "gemm", every product runs ATen's mm: the same
// maths, other rounding. On a given machine and thread count the choice is cached, so results are the same from run to
// run.
#include <torch/torch.h>

#include <string>

namespace ssmax {

enum class CpuBlas { kOpenBlas, kAten };

// The library CPU float32 products use from now on (process-wide). Before any call: OpenBLAS where usable. Asking for
// OpenBLAS where it is not usable leaves ATen.
void use_cpu_blas(CpuBlas blas);
CpuBlas cpu_blas_in_use();
// OpenBLAS's OpenMP build could be opened; usable: loaded and SSMAX_UNFUSED does not name gemm.
bool openblas_loaded();
bool openblas_usable();
// "OpenBLAS 0.3.21 … Prescott … (path)", or why it is not usable.
std::string openblas_description();
// The kernel family OpenBLAS picked for this CPU ("Haswell", "SkylakeX", "Prescott"); empty when not loaded.
std::string openblas_core();
// "ATen/MKL 2024.2" (the library behind ATen's CPU sgemm in this LibTorch).
std::string aten_blas_description();
// What every CPU speed figure depends on, for the keys of the machine cache (util/machine_cache.h): the CPU (name,
// family, model, stepping), the intra-op threads, LibTorch, both libraries and the environment variables that limit
// the instructions they use (OPENBLAS_CORETYPE, ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA, MKL_ENABLE_INSTRUCTIONS,
// SSMAX_HIDE_CPU_FLAGS).
std::string cpu_speed_identity();

// c = a·b, or c += a·b when accumulate. a [M, K] and b [K, N] may be transposed views of contiguous tensors; c is
// a contiguous [M, N]. Any dtype and device: only CPU float32 goes to OpenBLAS.
void gemm_out(torch::Tensor& c, const torch::Tensor& a, const torch::Tensor& b, bool accumulate = false);
// The same through the named library, OpenBLAS whenever it is loaded (for timing the two against each other).
void gemm_out_with(CpuBlas blas, torch::Tensor& c, const torch::Tensor& a, const torch::Tensor& b,
                   bool accumulate = false);

// y = x·weightᵀ (+ bias), x [..., in], weight [out, in], bias [out] or undefined. Differentiable; its backward uses
// gemm_out too. Equal to torch::nn::functional::linear up to the matmul's rounding.
torch::Tensor gemm_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias = {});

// Where matrix products run now: openblas_description() or "ATen/MKL … (<why>)". For logs and bench.
std::string gemm_backend();

}  // namespace ssmax
