#include "train/precision.h"

#include <ATen/autocast_mode.h>
#include <ATen/cpu/Utils.h>
#include <spdlog/spdlog.h>

#include "kernels/linear_cross_entropy.h"
#include "util/errors.h"
#include "util/system_info.h"

namespace ssmax {

std::string cpu_bf16_units() {
  std::string units;
  if (cpu_has_flag("amx_bf16") && at::cpu::init_amx()) units = "AMX tiles";
  if (cpu_has_flag("avx512_bf16")) units += std::string(units.empty() ? "" : " and ") + "AVX-512-BF16";
  return units;
}

void configure_precision(const TrainConfig& train, const torch::Device& device) {
  if (train.tf32 && !device.is_cuda())
    throw UsageError("train.tf32 = true needs a CUDA device, but the run is on " + device.str() +
                     " (set train.tf32=false, or device=cuda on a machine with a GPU)");
  if (uses_bf16(train) && device.is_cpu()) {
    const std::string units = cpu_bf16_units();
    if (units.empty())
      spdlog::warn("train.precision = \"bf16\" on a CPU without bf16 matrix instructions (AVX-512-BF16, AMX): bf16 "
                   "is emulated and slower than fp32 here; set train.precision = \"fp32\"");
    else
      spdlog::info("train.precision = \"bf16\": matrix products in bf16 on this CPU's {} (oneDNN); weights, "
                   "gradients and AdamW state stay float32",
                   units);
  }
  use_chunked_loss_on_cuda(train.cuda_chunked_loss);
  // TF32 lets cuBLAS round float32 matmul inputs to 10 mantissa bits; IEEE keeps full float32.
  at::globalContext().setFloat32Precision(at::Float32Backend::CUDA, at::Float32Op::MATMUL,
                                          train.tf32 ? at::Float32Precision::TF32 : at::Float32Precision::IEEE);
}

AutocastScope::AutocastScope(const torch::Device& device, bool bf16) : active_(bf16), type_(device.type()) {
  if (!active_) return;
  was_enabled_ = at::autocast::is_autocast_enabled(type_);
  previous_dtype_ = at::autocast::get_autocast_dtype(type_);
  at::autocast::set_autocast_dtype(type_, at::kBFloat16);
  at::autocast::set_autocast_enabled(type_, true);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  // The cache of bf16 weight copies lives for the outermost scope only, as in torch.autocast.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(type_, was_enabled_);
  at::autocast::set_autocast_dtype(type_, previous_dtype_);
}

}  // namespace ssmax
