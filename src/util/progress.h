#pragma once
// Progress of a long pass over bytes, as a log line: "encoding: 45% of 5.00 GB, 9.8 MB/s, ETA 7m32s", at every tenth
// and at least every 30 s. Quiet for totals under 32 MB, which take seconds.
#include <chrono>
#include <cstdint>
#include <string>

namespace ssmax {

class ByteProgress {
 public:
  ByteProgress(std::string what, uint64_t total_bytes);
  void update(uint64_t done_bytes);

 private:
  using Clock = std::chrono::steady_clock;
  std::string what_;
  uint64_t total_;
  int tenth_ = 0;
  Clock::time_point start_ = Clock::now(), last_ = Clock::now();
};

std::string duration_text(double seconds);  // "7m32s", "2h05m"
double seconds_since(std::chrono::steady_clock::time_point start);

}  // namespace ssmax
