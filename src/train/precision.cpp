#include "train/precision.h"

#include <ATen/autocast_mode.h>
#include <ATen/cpu/Utils.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "kernels/linear_cross_entropy.h"
#include "util/errors.h"
#include "util/system_info.h"

namespace ssmax {

namespace {

constexpr int64_t kSlowdownProbeSize = 256;  // emulated bf16 runs this in ~50 ms

// How many times longer a bf16 product takes than a float32 one: one warm-up each, then the faster of two.
double emulated_bf16_slowdown() {
  torch::NoGradGuard no_grad;
  double seconds[2];
  const torch::Dtype dtypes[] = {torch::kFloat32, torch::kBFloat16};
  for (int i = 0; i < 2; ++i) {
    auto a = torch::full({kSlowdownProbeSize, kSlowdownProbeSize}, 0.5f, dtypes[i]), c = torch::empty_like(a);
    seconds[i] = 1e30;
    for (int rep = 0; rep < 3; ++rep) {
      const auto start = std::chrono::steady_clock::now();
      at::mm_out(c, a, a);
      if (rep > 0)
        seconds[i] =
            std::min(seconds[i], std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
  }
  return seconds[1] / seconds[0];
}

}  // namespace

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
    // Run, with the cost in the warning, rather than refuse: the results are right, and a bf16 run on a small CPU
    // model is how a GPU config's numerics are checked before the GPU (scripts/gpu_check.sh's dry run).
    if (units.empty())
      spdlog::warn("train.precision = \"bf16\" on a CPU without bf16 matrix instructions (AVX-512-BF16, AMX): bf16 "
                   "is emulated and slower than fp32 here ({:.0f}× float32's time for a {}² product); set "
                   "train.precision = \"fp32\" for speed",
                   emulated_bf16_slowdown(), kSlowdownProbeSize);
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
