#pragma once
// Which hand-written kernels run. Every fused kernel has a composite ATen form that computes the same thing (and
// serves devices and dtypes the kernel does not); SSMAX_UNFUSED=name,name,… (or "all") selects the composite form
// instead, so one binary can measure what each kernel buys and check its numbers. Names: rms_norm, qkv_rope,
// cross_entropy, adamw.
#include <string>

namespace ssmax {

bool fused_kernel_enabled(const std::string& name);

}  // namespace ssmax
