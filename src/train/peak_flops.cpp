#include "train/peak_flops.h"

#include <ATen/cuda/CUDAContext.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <thread>
#include <utility>
#include <vector>

#include "dist/distributed.h"
#include "kernels/gemm.h"
#include "train/precision.h"
#include "util/machine_cache.h"
#include "util/machine_load.h"
#include "util/system_info.h"

namespace ssmax {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// Dense bf16 tensor-core peaks (TFLOP/s), matched as substrings of the CUDA device name, most specific first.
const std::vector<std::pair<std::string, double>>& gpu_table() {
  static const std::vector<std::pair<std::string, double>> table = {
      {"H200", 989}, {"H100 PCIe", 756}, {"H100", 989}, {"A100", 312}};
  return table;
}

// One timed product lasts about this long: a library reaches its speed (at 2048² MKL's two threads had not, on a
// 2-core machine: 0.075 against 0.116 TFLOP/s at 4096²), and a slow CPU still measures in seconds.
constexpr double kProductSeconds = 0.3;
constexpr double kBudgetSeconds = 4;  // for all contenders' repetitions (a product already started finishes)
constexpr int64_t kProbeSize = 512, kMaxSize = 4096, kSizeStep = 256;
// Above any CPU core's dense peak (AMX bf16 on a current Xeon core is a few TFLOP/s): a cached figure beyond it per
// thread is damage, not a measurement.
constexpr double kMaxPlausibleTflopsPerThread = 10;

double seconds_of(const std::function<void()>& work) {
  const auto start = Clock::now();
  work();
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// c = a·b for square n × n operands through one library and dtype; constant operands, because a matmul's speed does
// not depend on its values and the global generator (dropout, saved in checkpoints) must not move.
struct Contender {
  std::string name;  // "ATen/MKL float32"
  CpuBlas blas = CpuBlas::kAten;
  torch::Dtype dtype = torch::kFloat32;

  std::function<void()> product(int64_t n) const {
    auto a = torch::full({n, n}, 0.5f).to(dtype), b = torch::full({n, n}, 0.25f).to(dtype);
    auto c = torch::empty({n, n}, a.options());
    if (dtype == torch::kFloat32) return [=]() mutable { gemm_out_with(blas, c, a, b); };
    return [=]() mutable { at::mm_out(c, a, b); };
  }
};

struct Measured {
  double tflops = 0;
  std::string what;  // "ATen/MKL float32, 2560² products"
  MeasurementConditions conditions;
};

// The fastest contender's TFLOP/s. Each is probed with a 512² product (after one warm-up: thread pool, buffers; the
// faster of two), which sizes its timed product to about kProductSeconds; a contender the probe shows at less than
// half the fastest's speed cannot be the peak and is not timed further. The others: one warm-up at their size, then
// the best of up to 3 repetitions 50 ms apart, so that one slow moment does not set the peak — as many as fit in
// kBudgetSeconds, whatever the products turn out to take (another process may slow them tenfold after the probe).
Measured measure_cpu(const std::vector<Contender>& contenders) {
  torch::NoGradGuard no_grad;
  LoadWatch load;
  const auto start = Clock::now();
  const auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  std::vector<double> probe_rate;
  for (const auto& c : contenders) {
    auto probe = c.product(kProbeSize);
    probe();
    probe_rate.push_back(2.0 * kProbeSize * kProbeSize * kProbeSize / std::min(seconds_of(probe), seconds_of(probe)));
  }
  const double fastest_probe = *std::max_element(probe_rate.begin(), probe_rate.end());
  Measured best;
  for (size_t i = 0; i < contenders.size(); ++i) {
    if (probe_rate[i] < fastest_probe / 2) continue;
    const double side = std::cbrt(kProductSeconds * probe_rate[i] / 2);
    const int64_t n = std::clamp<int64_t>(static_cast<int64_t>(side) / kSizeStep * kSizeStep, kProbeSize, kMaxSize);
    auto run = contenders[i].product(n);
    double fastest = seconds_of(run), slowest = 0;  // the warm-up counts only when no repetition fits
    int repetitions = 0;
    for (; repetitions < 3 && elapsed() + fastest + 0.05 <= kBudgetSeconds; ++repetitions) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      const double s = seconds_of(run);
      fastest = std::min(fastest, s), slowest = std::max(slowest, s);
    }
    const double tflops = 2.0 * n * n * n / fastest / 1e12;
    if (tflops > best.tflops) {
      best.tflops = tflops;
      best.what = contenders[i].name + ", " + std::to_string(n) + "² products";
      // Fewer than two repetitions show no spread: counted as unsteady, so that the next run measures again.
      best.conditions.spread = repetitions >= 2 ? (slowest - fastest) / fastest : 1.0;
    }
  }
  best.conditions.others_cores = load.others_cores();
  best.conditions.threads = at::get_num_threads();
  return best;
}

// Float32 through each CPU BLAS (kernels/gemm.h); for a bf16 run also ATen's bf16 matmul (oneDNN/MKL) — but only on a
// CPU with bf16 matrix instructions: where bf16 is emulated (~0.5 GFLOP/s a thread on an AVX2-only AMD EPYC: minutes
// for one large product) it cannot be the peak, and float32's is the machine's best.
std::vector<Contender> cpu_contenders(bool bf16) {
  std::vector<Contender> contenders = {{aten_blas_description() + " float32", CpuBlas::kAten, torch::kFloat32}};
  if (openblas_loaded()) contenders.push_back({"OpenBLAS float32", CpuBlas::kOpenBlas, torch::kFloat32});
  if (bf16 && !cpu_bf16_units().empty()) contenders.push_back({"ATen bf16", CpuBlas::kAten, torch::kBFloat16});
  return contenders;
}

std::string cpu_peak_key(bool bf16) {
  return cpu_speed_identity() + " | peak " + (bf16 && !cpu_bf16_units().empty() ? "bf16 or float32" : "float32") +
         " matmul";
}

// Measures (again, when `previous` holds an unsettled figure: the best of all measurements is kept), stores and says
// what was measured and how long it took.
PeakFlops measure_cpu_peak(bool bf16, const Measured* previous, double at_least, const char* source) {
  const auto contenders = cpu_contenders(bf16);
  std::string names;
  for (const auto& c : contenders) names += (names.empty() ? "" : ", ") + c.name;
  spdlog::info("measuring this CPU's peak FLOP/s for MFU ({}{}; a few seconds, kept per machine)", names,
               bf16 && contenders.back().dtype == torch::kFloat32 ? "; bf16 is emulated on this CPU: not timed" : "");
  const auto start = Clock::now();
  Measured m = measure_cpu(contenders);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (previous && previous->tflops > m.tflops) {
    m.tflops = previous->tflops, m.what = previous->what;
  }
  if (previous) m.conditions.measurements = previous->conditions.measurements + 1;
  m.tflops = std::max(m.tflops, at_least);
  const bool settled = m.conditions.settled(hardware_threads());
  spdlog::info("peak {:.3g} TFLOP/s ({}; {}; {:.1f} s){}", m.tflops, m.what, m.conditions.describe(), seconds,
               settled ? ""
                       : fmt::format(": taken under load, measured again by the next run ({} of {})",
                                     m.conditions.measurements, MeasurementConditions::kMaxMeasurements));
  json stored = m.conditions.to_json();
  stored["tflops"] = m.tflops;
  stored["what"] = m.what;
  // A settled, higher figure another process stored meanwhile stays.
  machine_cache_put(cpu_peak_key(bf16), stored, [&](const json& existing) {
    return existing.is_object() && existing.value("tflops", 0.0) >= m.tflops &&
           MeasurementConditions::from_json(existing).settled(hardware_threads());
  });
  return {m.tflops, source};
}

// A cached peak, unless it is damaged, implausible (above kMaxPlausibleTflopsPerThread) or was taken under load and
// not yet measured kMaxMeasurements times.
PeakFlops cpu_peak(bool bf16) {
  const auto cached = machine_cache_get(cpu_peak_key(bf16));
  if (!cached || !cached->is_object() || !cached->contains("tflops") || !(*cached)["tflops"].is_number())
    return measure_cpu_peak(bf16, nullptr, 0, "measured");
  Measured previous{(*cached)["tflops"].get<double>(), cached->value("what", "?"),
                    MeasurementConditions::from_json(*cached)};
  const double limit = kMaxPlausibleTflopsPerThread * at::get_num_threads();
  if (!(previous.tflops > 0 && previous.tflops <= limit)) {
    spdlog::warn("{}: the cached peak of {:.3g} TFLOP/s is implausible for {} threads (at most {:g}); measuring again",
                 machine_cache_path(), previous.tflops, at::get_num_threads(), limit);
    return measure_cpu_peak(bf16, nullptr, 0, "re-measured");
  }
  if (!previous.conditions.settled(hardware_threads())) return measure_cpu_peak(bf16, &previous, 0, "re-measured");
  return {previous.tflops, "cached"};
}

}  // namespace

PeakFlops device_peak_flops(const torch::Device& device, bool bf16) {
  if (device.is_cuda()) {
    const std::string name = at::cuda::getDeviceProperties(device.index() < 0 ? 0 : device.index())->name;
    for (const auto& [pattern, tflops] : gpu_table())
      if (name.find(pattern) != std::string::npos) return {tflops, "table: " + name};
    return {0, "unknown: " + name};
  }
  // Under torchrun rank 0 measures (or reads the cache) and every rank uses its figure: ranks measuring at once would
  // each be measured under the others' load.
  const json peak = json::parse(Distributed::instance().on_main(
      "the CPU's peak FLOP/s",
      [&] {
        const PeakFlops p = cpu_peak(bf16);
        return json{{"tflops", p.tflops}, {"source", p.source}}.dump();
      },
      std::chrono::minutes(5)));
  return {peak["tflops"].get<double>(), peak["source"].get<std::string>()};
}

MfuMeter::MfuMeter(const torch::Device& device, bool bf16, PeakFlops peak)
    : device_(device), bf16_(bf16), peak_(std::move(peak)) {}

std::optional<double> MfuMeter::mfu(double model_flops_per_s) {
  if (peak_.tflops <= 0) return std::nullopt;
  const double achieved = model_flops_per_s / 1e12;
  if (achieved > peak_.tflops) {
    const bool measured =
        device_.is_cpu() && (peak_.source == "measured" || peak_.source == "cached" || peak_.source == "re-measured");
    // Only rank 0 writes the run's records; the other ranks raise their figure without measuring or saying so.
    if (!Distributed::instance().is_main()) {
      peak_ = PeakFlops{achieved, "raised to what a step did"};
      return 1.0;
    }
    spdlog::warn("steps ran at {:.3g} TFLOP/s of model FLOPs, above the {} peak of {:.3g}: the peak is wrong{}",
                 achieved, peak_.source, peak_.tflops, measured ? " (measured low); measuring it again" : "");
    peak_ = measured ? measure_cpu_peak(bf16_, nullptr, achieved, "re-measured")
                     : PeakFlops{achieved, "raised to what a step did"};
    spdlog::warn("mfu now against a peak of {:.3g} TFLOP/s per process ({}{})", peak_.tflops, peak_.source,
                 measured ? "; corrected in " + machine_cache_path() : "");
  }
  return achieved / peak_.tflops;
}

}  // namespace ssmax
