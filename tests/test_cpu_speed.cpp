// Pins the CPU's speed bookkeeping: the BLAS chosen by timing (train/cpu_blas.h) and the peak behind MFU
// (train/peak_flops.h), both measured once per machine and then read from the machine cache; an MFU that cannot
// pass 100 % because a peak shown too low is measured again and corrected.
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
#include "util/files.h"
#include "util/machine_cache.h"

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
  EXPECT_EQ(measured.how, "measured");
  EXPECT_GT(measured.openblas_gflops, 0);
  EXPECT_GT(measured.aten_gflops, 0);
  EXPECT_EQ(measured.blas, measured.openblas_gflops > measured.aten_gflops ? CpuBlas::kOpenBlas : CpuBlas::kAten);
  EXPECT_EQ(cpu_blas_in_use(), measured.blas);
  const std::string line = describe_blas_choice(measured);
  EXPECT_NE(line.find("GFLOP/s on this model's products"), std::string::npos) << line;
  EXPECT_NE(line.find("OpenBLAS"), std::string::npos) << line;
  EXPECT_NE(line.find("ATen"), std::string::npos) << line;

  const BlasChoice cached = choose_cpu_blas("auto", small_model(), 512, 128);
  EXPECT_EQ(cached.how, "cached");
  EXPECT_EQ(cached.blas, measured.blas);
  EXPECT_EQ(cached.aten_gflops, measured.aten_gflops);

  // Another shape is another key: measured again.
  ModelConfig wider = small_model();
  wider.n_embd = 96;
  EXPECT_EQ(choose_cpu_blas("auto", wider, 512, 128).how, "measured");

  std::ofstream(machine_cache_path()) << "{ damaged";
  EXPECT_EQ(choose_cpu_blas("auto", small_model(), 512, 128).how, "measured");  // not trusted, measured again
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
                 {"aten_gflops", openblas_faster ? 9 : 900}};
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
  use_cpu_blas(CpuBlas::kOpenBlas);
  const PeakFlops with_openblas = device_peak_flops(torch::kCPU);
  EXPECT_EQ(with_aten.source, "measured");
  EXPECT_EQ(with_openblas.source, "cached");  // one key for both: the machine's peak
  EXPECT_EQ(with_openblas.tflops, with_aten.tflops);
}

TEST(MfuMeter, APeakShownTooLowIsMeasuredAgainAndCorrected) {
  ScratchCache cache("mfu-too-low");
  const PeakFlops real = device_peak_flops(torch::kCPU);
  json planted = cache.read();
  for (auto& [key, value] : planted.items()) value = 1e-6;  // 1 MFLOP/s: any step beats it
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
