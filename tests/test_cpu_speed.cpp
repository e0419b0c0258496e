// Pins the CPU's speed bookkeeping: the BLAS chosen by timing (train/cpu_blas.h) and the peak behind MFU
// (train/peak_flops.h), both measured once per machine and then read from the machine cache — unless taken under load
// (util/machine_load.h): then measured again by the next runs, up to three times, keeping the best; an MFU that cannot
// pass 100 % because a peak shown too low is measured again and corrected; an implausible cached peak is not trusted.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "kernels/gemm.h"
#include "test_util.h"
#include "train/cpu_blas.h"
#include "train/peak_flops.h"
#include "train/precision.h"
#include "util/files.h"
#include "util/machine_cache.h"
#include "util/machine_load.h"

namespace ssmax {
namespace {

using json = nlohmann::json;

// SSMAX_CACHE_DIR pointed at a fresh directory for one test, restored after it.
class ScratchCache {
 public:
  explicit ScratchCache(const std::string& name) : dir_(test_dir(name)) {
    const char* before = std::getenv("SSMAX_CACHE_DIR");
    had_ = before != nullptr;
    if (had_) saved_ = before;
    ::setenv("SSMAX_CACHE_DIR", dir_.c_str(), 1);
  }
  ~ScratchCache() {
    if (had_) ::setenv("SSMAX_CACHE_DIR", saved_.c_str(), 1);
    else ::unsetenv("SSMAX_CACHE_DIR");
    use_cpu_blas(CpuBlas::kOpenBlas);  // the process default, for the tests after this one
  }
  json read() const { return json::parse(read_file(machine_cache_path())); }
  void write(const json& j) const { write_file_atomic(machine_cache_path(), j.dump(2)); }
  // Every entry's conditions as a quiet machine gives them (the suite runs tests in parallel: a real measurement here
  // is often taken under load), or as a busy one gives them.
  void set_conditions(bool steady, int measurements = 1) const {
    json cache = read();
    for (auto& [key, value] : cache.items()) {
      value["others_cores"] = steady ? 0.0 : 64.0;
      value["spread"] = 0.0;
      value["measurements"] = measurements;
    }
    write(cache);
  }

 private:
  std::string dir_, saved_;
  bool had_ = false;
};

ModelConfig small_model() {
  ModelConfig m;
  m.n_layer = 2;
  m.n_head = 2;
  m.n_embd = 64;
  m.block_size = 32;
  return m;
}

TEST(CpuBlas, ChoiceIsTheFasterMeasuredOnceThenCached) {
  if (!openblas_loaded()) GTEST_SKIP() << "OpenBLAS not loaded: " << openblas_description();
  ScratchCache cache("cpu-blas-cached");
  const BlasChoice measured = choose_cpu_blas("auto", small_model(), 512, 128);
  EXPECT_EQ(measured.how.rfind("measured", 0), 0u) << measured.how;
  EXPECT_GT(measured.openblas_gflops, 0);
  EXPECT_GT(measured.aten_gflops, 0);
  EXPECT_EQ(measured.blas, measured.openblas_gflops > measured.aten_gflops ? CpuBlas::kOpenBlas : CpuBlas::kAten);
  EXPECT_EQ(cpu_blas_in_use(), measured.blas);
  const std::string line = describe_blas_choice(measured);
  EXPECT_NE(line.find("GFLOP/s on this model's products"), std::string::npos) << line;
  EXPECT_NE(line.find("OpenBLAS"), std::string::npos) << line;
  EXPECT_NE(line.find("ATen"), std::string::npos) << line;

  cache.set_conditions(/*steady=*/true);
  const BlasChoice cached = choose_cpu_blas("auto", small_model(), 512, 128);
  EXPECT_EQ(cached.how, "cached");
  EXPECT_EQ(cached.blas, measured.blas);
  EXPECT_EQ(cached.aten_gflops, measured.aten_gflops);

  // Another shape is another key: measured again.
  ModelConfig wider = small_model();
  wider.n_embd = 96;
  EXPECT_EQ(choose_cpu_blas("auto", wider, 512, 128).how.rfind("measured", 0), 0u);

  std::ofstream(machine_cache_path()) << "{ damaged";
  EXPECT_EQ(choose_cpu_blas("auto", small_model(), 512, 128).how.rfind("measured", 0), 0u);  // not trusted
}

TEST(CpuBlas, AChoiceTakenUnderLoadIsTimedAgainKeepingEachLibrarysBest) {
  if (!openblas_loaded()) GTEST_SKIP() << "OpenBLAS not loaded: " << openblas_description();
  ScratchCache cache("cpu-blas-load");
  choose_cpu_blas("auto", small_model(), 512, 128);
  // Planted: a timing under load that showed OpenBLAS far ahead. Timed again, each library keeps its best figure, so
  // OpenBLAS's 900 stands and the choice stays; the count of measurements grows until the third settles it.
  json planted = cache.read();
  for (auto& [key, value] : planted.items())
    value.update({{"blas", "openblas"}, {"openblas_gflops", 900}, {"aten_gflops", 1e-3}, {"others_cores", 64.0}});
  cache.write(planted);
  for (int measurement = 2; measurement <= 3; ++measurement) {
    const BlasChoice again = choose_cpu_blas("auto", small_model(), 512, 128);
    EXPECT_EQ(again.how.rfind("measured", 0), 0u) << again.how;
    EXPECT_EQ(again.blas, CpuBlas::kOpenBlas);
    EXPECT_EQ(again.openblas_gflops, 900);
    EXPECT_GT(again.aten_gflops, 1e-3);  // ATen's real figure replaced the loaded one
    EXPECT_EQ(again.conditions.measurements, measurement);
    if (measurement == 2) cache.set_conditions(/*steady=*/false, 2);
  }
  EXPECT_EQ(choose_cpu_blas("auto", small_model(), 512, 128).how, "cached");  // three measurements: settled

  // A loaded timing that chose the library the quiet one shows clearly slower is corrected.
  planted = cache.read();
  for (auto& [key, value] : planted.items())
    value.update({{"blas", "aten"},
                  {"openblas_gflops", 1e-3},
                  {"aten_gflops", 1e-3},
                  {"measurements", 1},
                  {"others_cores", 64.0}});
  cache.write(planted);
  const BlasChoice corrected = choose_cpu_blas("auto", small_model(), 512, 128);
  const bool openblas_clearly_faster = corrected.openblas_gflops > 1.1 * corrected.aten_gflops;
  EXPECT_EQ(corrected.blas, openblas_clearly_faster ? CpuBlas::kOpenBlas : CpuBlas::kAten)
      << corrected.openblas_gflops << " vs " << corrected.aten_gflops;
}

TEST(CpuBlas, AResumedRunKeepsItsLibrary) {
  if (!openblas_loaded()) GTEST_SKIP() << "OpenBLAS not loaded: " << openblas_description();
  ScratchCache cache("cpu-blas-resumed");
  for (const CpuBlas library : {CpuBlas::kOpenBlas, CpuBlas::kAten}) {
    const BlasChoice kept = choose_cpu_blas("auto", small_model(), 512, 128, library);
    EXPECT_EQ(kept.blas, library);
    EXPECT_EQ(cpu_blas_in_use(), library);
    EXPECT_EQ(kept.aten_gflops, 0);  // nothing timed
  }
  EXPECT_FALSE(std::ifstream(machine_cache_path()).good());  // nothing measured, nothing cached
  EXPECT_EQ(choose_cpu_blas("openblas", small_model(), 512, 128, CpuBlas::kAten).blas, CpuBlas::kOpenBlas);
  EXPECT_EQ(cpu_blas_from_name("aten"), CpuBlas::kAten);
  EXPECT_EQ(cpu_blas_from_name(cpu_blas_name(CpuBlas::kOpenBlas)), CpuBlas::kOpenBlas);
  EXPECT_FALSE(cpu_blas_from_name("").has_value());
}

TEST(CpuBlas, TheCachedFiguresDecide) {
  if (!openblas_loaded()) GTEST_SKIP() << "OpenBLAS not loaded: " << openblas_description();
  ScratchCache cache("cpu-blas-planted");
  choose_cpu_blas("auto", small_model(), 512, 128);
  for (const bool openblas_faster : {true, false}) {
    json planted = cache.read();
    int entries = 0;
    for (auto& [key, value] : planted.items())
      if (value.is_object() && value.contains("blas")) {
        value = {{"blas", openblas_faster ? "openblas" : "aten"},
                 {"openblas_gflops", openblas_faster ? 900 : 9},
                 {"aten_gflops", openblas_faster ? 9 : 900},
                 {"others_cores", 0.0},
                 {"spread", 0.0}};
        ++entries;
      }
    ASSERT_EQ(entries, 1);
    cache.write(planted);
    const BlasChoice c = choose_cpu_blas("auto", small_model(), 512, 128);
    EXPECT_EQ(c.how, "cached");
    EXPECT_EQ(c.blas, openblas_faster ? CpuBlas::kOpenBlas : CpuBlas::kAten);
    EXPECT_EQ(cpu_blas_in_use(), c.blas);
    EXPECT_EQ(gemm_backend().rfind("ATen", 0) == 0, !openblas_faster) << gemm_backend();
  }
}

TEST(CpuBlas, AnExplicitSettingIsObeyedWithoutTiming) {
  ScratchCache cache("cpu-blas-forced");
  const BlasChoice aten = choose_cpu_blas("aten", small_model(), 512, 128);
  EXPECT_EQ(aten.blas, CpuBlas::kAten);
  EXPECT_EQ(aten.aten_gflops, 0);  // nothing timed
  EXPECT_EQ(cpu_blas_in_use(), CpuBlas::kAten);
  EXPECT_EQ(gemm_backend().rfind("ATen", 0), 0u) << gemm_backend();
  if (!openblas_loaded()) return;
  EXPECT_EQ(aten.how, "cpu_blas = aten");
  EXPECT_EQ(choose_cpu_blas("openblas", small_model(), 512, 128).blas, CpuBlas::kOpenBlas);
  EXPECT_EQ(cpu_blas_in_use(), CpuBlas::kOpenBlas);
  EXPECT_EQ(gemm_backend().find("OpenBLAS"), 0u) << gemm_backend();
}

TEST(CpuBlas, BothLibrariesComputeTheSameProducts) {
  if (!openblas_loaded()) GTEST_SKIP() << "OpenBLAS not loaded: " << openblas_description();
  torch::manual_seed(11);
  const auto a = torch::randn({70, 40}), b = torch::randn({40, 30});
  auto c_openblas = torch::empty({70, 30}), c_aten = torch::empty({70, 30});
  gemm_out_with(CpuBlas::kOpenBlas, c_openblas, a, b);
  gemm_out_with(CpuBlas::kAten, c_aten, a, b);
  EXPECT_TRUE(torch::allclose(c_openblas, c_aten, 1e-5, 1e-5));
}

TEST(PeakFlops, CpuPeakIsMeasuredOnceThenCachedPerMachine) {
  ScratchCache cache("peak-flops");
  const PeakFlops measured = device_peak_flops(torch::kCPU);
  cache.set_conditions(/*steady=*/true);
  const PeakFlops cached = device_peak_flops(torch::kCPU);
  std::ofstream(machine_cache_path()) << "{ damaged";
  const PeakFlops remeasured = device_peak_flops(torch::kCPU);
  EXPECT_EQ(measured.source, "measured");
  EXPECT_GT(measured.tflops, 0);
  EXPECT_EQ(cached.source, "cached");
  EXPECT_EQ(cached.tflops, measured.tflops);
  EXPECT_EQ(remeasured.source, "measured");  // a damaged cache is measured again, not trusted
  EXPECT_GT(remeasured.tflops, 0);
}

TEST(PeakFlops, TheCpuPeakIsTheFasterLibraryNotTheOneInUse) {
  ScratchCache cache("peak-flops-library");
  use_cpu_blas(CpuBlas::kAten);
  const PeakFlops with_aten = device_peak_flops(torch::kCPU);
  cache.set_conditions(/*steady=*/true);
  use_cpu_blas(CpuBlas::kOpenBlas);
  const PeakFlops with_openblas = device_peak_flops(torch::kCPU);
  EXPECT_EQ(with_aten.source, "measured");
  EXPECT_EQ(with_openblas.source, "cached");  // one key for both: the machine's peak
  EXPECT_EQ(with_openblas.tflops, with_aten.tflops);
}

TEST(PeakFlops, APeakTakenUnderLoadIsMeasuredAgainKeepingTheBest) {
  ScratchCache cache("peak-flops-load");
  device_peak_flops(torch::kCPU);
  json planted = cache.read();
  // Faster than this CPU, yet plausible (under 10 TFLOP/s a thread).
  for (auto& [key, value] : planted.items()) value.update({{"tflops", 5.0}, {"others_cores", 64.0}});
  cache.write(planted);
  const PeakFlops again = device_peak_flops(torch::kCPU);
  EXPECT_EQ(again.source, "re-measured");
  EXPECT_EQ(again.tflops, 5.0);  // the best of the measurements: the planted one
  EXPECT_EQ(cache.read().begin().value()["measurements"], 2);
  cache.set_conditions(/*steady=*/false, MeasurementConditions::kMaxMeasurements);
  EXPECT_EQ(device_peak_flops(torch::kCPU).source, "cached");  // measured three times: the best is used as it is
}

TEST(PeakFlops, AnImplausibleCachedPeakIsMeasuredAgain) {
  ScratchCache cache("peak-flops-implausible");
  const PeakFlops real = device_peak_flops(torch::kCPU);
  for (const double planted_tflops : {1e30, -1.0, 0.0}) {
    json planted = cache.read();
    for (auto& [key, value] : planted.items()) value.update({{"tflops", planted_tflops}, {"others_cores", 0.0}});
    cache.write(planted);
    const PeakFlops p = device_peak_flops(torch::kCPU);
    EXPECT_EQ(p.source, "re-measured") << planted_tflops;
    EXPECT_GT(p.tflops, 0.01 * real.tflops) << planted_tflops;
    EXPECT_LT(p.tflops, 100 * real.tflops) << planted_tflops;
  }
}

// The environment this process was started in decides what a bf16 peak times: with bf16 matrix instructions, also a
// bf16 product; without them (or with them hidden: SSMAX_HIDE_CPU_FLAGS, as the ctest run CpuWithoutBf16.* does),
// float32 alone, under the same key as a float32 run's.
TEST(PeakFlops, Bf16IsTimedOnlyWhereTheCpuHasBf16Units) {
  ScratchCache cache("peak-flops-bf16");
  device_peak_flops(torch::kCPU, /*bf16=*/true);
  const json stored = cache.read();
  ASSERT_EQ(stored.size(), 1u);
  const std::string key = stored.begin().key(), what = stored.begin().value()["what"];
  const bool units = !cpu_bf16_units().empty();
  EXPECT_EQ(key.find("bf16 or float32") != std::string::npos, units) << key;
  if (!units) EXPECT_EQ(what.find("bf16"), std::string::npos) << what;
  cache.set_conditions(/*steady=*/true);
  EXPECT_EQ(device_peak_flops(torch::kCPU, /*bf16=*/false).source, units ? "measured" : "cached");
}

TEST(MfuMeter, APeakShownTooLowIsMeasuredAgainAndCorrected) {
  ScratchCache cache("mfu-too-low");
  const PeakFlops real = device_peak_flops(torch::kCPU);
  json planted = cache.read();
  for (auto& [key, value] : planted.items())
    value.update({{"tflops", 1e-6}, {"others_cores", 0.0}, {"spread", 0.0}});  // quiet; any step beats it
  cache.write(planted);
  const PeakFlops low = device_peak_flops(torch::kCPU);
  ASSERT_EQ(low.source, "cached");
  ASSERT_EQ(low.tflops, 1e-6);

  MfuMeter meter(torch::kCPU, false, low);
  const double achieved = 1e9;  // 0.001 TFLOP/s of model FLOPs
  const auto mfu = meter.mfu(achieved);
  ASSERT_TRUE(mfu.has_value());
  EXPECT_LE(*mfu, 1.0);
  EXPECT_EQ(meter.peak().source, "re-measured");
  EXPECT_GE(meter.peak().tflops, 0.001);
  EXPECT_GT(meter.peak().tflops, 0.01 * real.tflops);  // a real measurement, not the planted figure
  cache.set_conditions(/*steady=*/true);
  const PeakFlops corrected = device_peak_flops(torch::kCPU);
  EXPECT_EQ(corrected.source, "cached");
  EXPECT_EQ(corrected.tflops, meter.peak().tflops);  // the cache was corrected for the next run
}

TEST(MfuMeter, AGivenOrTablePeakIsRaisedNeverExceeded) {
  ScratchCache cache("mfu-given");
  MfuMeter meter(torch::kCPU, false, {0.001, "given"});
  EXPECT_DOUBLE_EQ(*meter.mfu(0.5e9), 0.5);
  EXPECT_DOUBLE_EQ(*meter.mfu(2e9), 1.0);
  EXPECT_DOUBLE_EQ(meter.peak().tflops, 0.002);
  EXPECT_DOUBLE_EQ(*meter.mfu(1e9), 0.5);
  MfuMeter unknown(torch::kCPU, false, {0, "unknown: x"});
  EXPECT_FALSE(unknown.mfu(1e9).has_value());
}

}  // namespace
}  // namespace ssmax
