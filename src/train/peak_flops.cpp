#include "train/peak_flops.h"

#include <ATen/cuda/CUDAContext.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <utility>
#include <vector>

#include "kernels/gemm.h"
#include "util/machine_cache.h"

namespace ssmax {
namespace {

// Dense bf16 tensor-core peaks (TFLOP/s), matched as substrings of the CUDA device name, most specific first.
const std::vector<std::pair<std::string, double>>& gpu_table() {
  static const std::vector<std::pair<std::string, double>> table = {
      {"H200", 989}, {"H100 PCIe", 756}, {"H100", 989}, {"A100", 312}};
  return table;
}

// The matmul size the CPU peak is measured at. At 2048² MKL's multi-threaded sgemm had not reached its speed on a
// 2-core machine (0.075 TFLOP/s against 0.116 at 4096²), and the model's own, better-shaped matmuls then measured over
// 100 %.
constexpr int64_t kPeakMatmulSize = 4096;

using Clock = std::chrono::steady_clock;

double seconds_of(const std::function<void()>& work) {
  const auto start = Clock::now();
  work();
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// TFLOP/s of the fastest of the contenders, each a function running one n³ product: one warm-up each (thread pool,
// the library's buffers), then, for every contender not already beaten by half, the best of 3 repetitions 50 ms
// apart, so that one slow moment (another process, a frequency change) does not set the peak.
double best_tflops(const std::vector<std::function<void()>>& contenders) {
  const double flops = 2.0 * kPeakMatmulSize * kPeakMatmulSize * kPeakMatmulSize;
  std::vector<double> warm;
  for (const auto& run : contenders) warm.push_back(seconds_of(run));
  const double fastest_warm = *std::min_element(warm.begin(), warm.end());
  double best = 1e30;
  for (size_t i = 0; i < contenders.size(); ++i) {
    best = std::min(best, warm[i]);
    if (warm[i] > 2 * fastest_warm) continue;  // cannot be the peak
    for (int rep = 0; rep < 3; ++rep) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      best = std::min(best, seconds_of(contenders[i]));
    }
  }
  return flops / best / 1e12;
}

double measure_cpu_tflops(bool bf16) {
  constexpr int64_t n = kPeakMatmulSize;
  torch::NoGradGuard no_grad;
  // Constant operands: the speed of a matmul does not depend on its values, and the global generator (dropout,
  // saved in checkpoints) must not move because a cache was missing.
  auto a = torch::full({n, n}, 0.5f), b = torch::full({n, n}, 0.25f), c = torch::empty({n, n});
  std::vector<std::function<void()>> contenders = {[&] { gemm_out_with(CpuBlas::kAten, c, a, b); }};
  if (openblas_loaded()) contenders.push_back([&] { gemm_out_with(CpuBlas::kOpenBlas, c, a, b); });
  torch::Tensor a16, b16, c16;
  if (bf16) {
    a16 = a.to(torch::kBFloat16), b16 = b.to(torch::kBFloat16), c16 = torch::empty({n, n}, torch::kBFloat16);
    contenders.push_back([&] { at::mm_out(c16, a16, b16); });
  }
  return best_tflops(contenders);
}

std::string cpu_peak_key(bool bf16) {
  return cpu_speed_identity() + " | peak " + (bf16 ? "bf16 or float32" : "float32") + " matmul " +
         std::to_string(kPeakMatmulSize);
}

PeakFlops measure_and_store_cpu_peak(bool bf16, double at_least, const char* source) {
  spdlog::info("measuring this CPU's peak FLOP/s for MFU ({}² matmuls through each library, a few seconds, once per "
               "machine)",
               kPeakMatmulSize);
  const double tflops = std::max(measure_cpu_tflops(bf16), at_least);
  machine_cache_put(cpu_peak_key(bf16), tflops);
  return {tflops, source};
}

PeakFlops cpu_peak(bool bf16) {
  if (auto cached = machine_cache_get(cpu_peak_key(bf16)); cached && cached->is_number() && cached->get<double>() > 0)
    return {cached->get<double>(), "cached"};
  return measure_and_store_cpu_peak(bf16, 0, "measured");
}

}  // namespace

PeakFlops device_peak_flops(const torch::Device& device, bool bf16) {
  if (!device.is_cuda()) return cpu_peak(bf16);
  const std::string name = at::cuda::getDeviceProperties(device.index() < 0 ? 0 : device.index())->name;
  for (const auto& [pattern, tflops] : gpu_table())
    if (name.find(pattern) != std::string::npos) return {tflops, "table: " + name};
  return {0, "unknown: " + name};
}

MfuMeter::MfuMeter(const torch::Device& device, bool bf16, PeakFlops peak)
    : device_(device), bf16_(bf16), peak_(std::move(peak)) {}

std::optional<double> MfuMeter::mfu(double model_flops_per_s) {
  if (peak_.tflops <= 0) return std::nullopt;
  const double achieved = model_flops_per_s / 1e12;
  if (achieved > peak_.tflops) {
    const bool measured =
        device_.is_cpu() && (peak_.source == "measured" || peak_.source == "cached" || peak_.source == "re-measured");
    spdlog::warn("steps ran at {:.3g} TFLOP/s of model FLOPs, above the {} peak of {:.3g}: the peak is wrong{}",
                 achieved, peak_.source, peak_.tflops, measured ? " (measured low); measuring it again" : "");
    peak_ = measured ? measure_and_store_cpu_peak(bf16_, achieved, "re-measured")
                     : PeakFlops{achieved, "raised to what a step did"};
    spdlog::warn("mfu now against a peak of {:.3g} TFLOP/s per process ({}{})", peak_.tflops, peak_.source,
                 measured ? "; corrected in " + machine_cache_path() : "");
  }
  return achieved / peak_.tflops;
}

}  // namespace ssmax
