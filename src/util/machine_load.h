#pragma once
// How trustworthy a speed measurement of this machine is (train/peak_flops.h, train/cpu_blas.h): how much CPU the rest
// of the machine took while it ran, and how far its repetitions spread. A figure taken while other processes competed
// for the cores (a parallel test suite, a second training run, a build) is too low, or picks the wrong library; kept
// in the machine cache for good it would mislead every later run. So each cached figure carries its conditions, and
// one taken under load or with a wide spread is measured again by the next run, up to kMaxMeasurements times, keeping
// the best of them; after that (a machine that is always busy) the best is used as it is.
#include <chrono>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace ssmax {

// Counts the CPU time every other process (and the hypervisor, as steal time) used from construction to others_cores():
// /proc/stat's machine-wide busy time less this process's own (/proc/self/stat).
class LoadWatch {
 public:
  LoadWatch();
  // The average number of cores others kept busy. The kernel counts in 10 ms ticks, so a window shorter than
  // kMinWindow is first waited out (idle), or one tick would read as a busy core.
  double others_cores() const;

  static constexpr std::chrono::milliseconds kMinWindow{250};

 private:
  std::chrono::steady_clock::time_point start_;
  int64_t machine_busy_ = 0, own_ = 0;  // ticks at the start
};

struct MeasurementConditions {
  double others_cores = 0;  // cores other processes kept busy on average (LoadWatch)
  double spread = 0;        // (slowest − fastest) / fastest repetition of the winning figure
  int threads = 1;          // the threads the measurement ran on
  int measurements = 1;     // how many runs measured this figure (the best kept)

  static constexpr int kMaxMeasurements = 3;
  // Competition for the cores the measurement used: others kept busy more than the cores it left free (plus a
  // quarter of a core for daemons and ticks), or its repetitions differed by more than a fifth.
  bool steady(int cores) const;
  // Good enough to keep for good: steady, or measured kMaxMeasurements times already.
  bool settled(int cores) const { return steady(cores) || measurements >= kMaxMeasurements; }
  // "others kept 1.3 cores busy; spread 4 %" — for the log.
  std::string describe() const;

  nlohmann::json to_json() const;
  // Missing fields (a cache written before conditions were kept) read as one unsteady measurement.
  static MeasurementConditions from_json(const nlohmann::json& j);
};

}  // namespace ssmax
