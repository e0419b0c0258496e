#pragma once
// Which hand-written kernels run. Every fused kernel has a composite ATen form that computes the same thing (and
// serves devices and dtypes the kernel does not); SSMAX_UNFUSED=name,name,… (or "all") selects the composite form
// instead, so one binary can measure what each kernel buys and check its numbers. Names: rms_norm, qkv_rope,
// cross_entropy, adamw, gelu, gemm (kernels/gemm.h: OpenBLAS instead of ATen's MKL).
#include <cstdint>
#include <string>

namespace ssmax {

bool fused_kernel_enabled(const std::string& name);

// How many of the intra-op threads an at::parallel_for over `tasks` one-element tasks reached, run from this library.
// The kernels above split their loops this way; the count is 1 when the library was compiled without OpenMP.
int intra_op_threads_reached(int64_t tasks);

}  // namespace ssmax
