#include "train/peak_flops.h"

#include <ATen/cuda/CUDAContext.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/gemm.h"
#include "util/files.h"
#include "util/system_info.h"

namespace ssmax {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Dense bf16 tensor-core peaks (TFLOP/s), matched as substrings of the CUDA device name, most specific first.
const std::vector<std::pair<std::string, double>>& gpu_table() {
  static const std::vector<std::pair<std::string, double>> table = {
      {"H200", 989}, {"H100 PCIe", 756}, {"H100", 989}, {"A100", 312}};
  return table;
}

fs::path cache_file() {
  if (const char* dir = std::getenv("SSMAX_CACHE_DIR"); dir && *dir) return fs::path(dir) / "peak_flops.json";
  const char* home = std::getenv("HOME");
  return fs::path(home && *home ? home : "/tmp") / ".cache" / "ssmax-gpt" / "peak_flops.json";
}

// The matmul size the CPU peak is measured at. At 2048² MKL's multi-threaded sgemm had not reached its speed on a
// 2-core machine (0.075 TFLOP/s against 0.116 at 4096²), and the model's own, better-shaped matmuls then measured over
// 100 %.
// Timed through gemm_out, the products the model runs (OpenBLAS where it is loaded, model/gemm.h), whose library is
// part of the cache key.
constexpr int64_t kPeakMatmulSize = 4096;

double measure_cpu_tflops() {
  constexpr int64_t n = kPeakMatmulSize;
  torch::NoGradGuard no_grad;
  // Constant operands: the speed of a matmul does not depend on its values, and the global generator (dropout,
  // saved in checkpoints) must not move because a cache was missing.
  auto a = torch::full({n, n}, 0.5f), b = torch::full({n, n}, 0.25f), c = torch::empty({n, n});
  gemm_out(c, a, b);  // warm-up: thread pool, the BLAS's buffers
  double best = 1e30;
  for (int i = 0; i < 3; ++i) {
    const auto start = std::chrono::steady_clock::now();
    gemm_out(c, a, b);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return 2.0 * n * n * n / best / 1e12;
}

PeakFlops cpu_peak() {
  const std::string key = cpu_model() + " | " + std::to_string(at::get_num_threads()) + " threads | LibTorch " +
                          TORCH_VERSION + " | sgemm " + std::to_string(kPeakMatmulSize) + " | " + gemm_backend();
  const fs::path file = cache_file();
  json cache = json::object();
  if (fs::exists(file)) {
    try {
      cache = json::parse(read_file(file.string()));
    } catch (const std::exception&) {
      cache = json::object();  // a damaged cache is measured again and rewritten
    }
    if (cache.is_object() && cache.contains(key) && cache[key].is_number() && cache[key].get<double>() > 0)
      return {cache[key].get<double>(), "cached"};
  }
  spdlog::info("measuring this CPU's peak FLOP/s for MFU (a {}² float matmul, a few seconds, once per machine)",
               kPeakMatmulSize);
  const double tflops = measure_cpu_tflops();
  if (!cache.is_object()) cache = json::object();
  cache[key] = tflops;
  try {
    fs::create_directories(file.parent_path());
    write_file_atomic(file.string(), cache.dump(2) + "\n");
  } catch (const std::exception& e) {
    spdlog::warn("peak FLOP/s not cached ({}); it is measured again next time", e.what());
  }
  return {tflops, "measured"};
}

}  // namespace

PeakFlops device_peak_flops(const torch::Device& device) {
  if (!device.is_cuda()) return cpu_peak();
  const std::string name = at::cuda::getDeviceProperties(device.index() < 0 ? 0 : device.index())->name;
  for (const auto& [pattern, tflops] : gpu_table())
    if (name.find(pattern) != std::string::npos) return {tflops, "table: " + name};
  return {0, "unknown: " + name};
}

}  // namespace ssmax
