#include "util/progress.h"

#include <algorithm>
#include <cmath>

#include <spdlog/spdlog.h>

namespace ssmax {

std::string duration_text(double seconds) {
  const long s = std::lround(seconds);
  return s >= 3600 ? fmt::format("{}h{:02}m", s / 3600, s / 60 % 60) : fmt::format("{}m{:02}s", s / 60, s % 60);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

ByteProgress::ByteProgress(std::string what, uint64_t total_bytes)
    : what_(std::move(what)), total_(std::max<uint64_t>(total_bytes, 1)) {}

void ByteProgress::update(uint64_t done) {
  if (total_ < (32u << 20)) return;
  const int tenth = static_cast<int>(std::min<uint64_t>(done * 10 / total_, 9));
  const auto now = Clock::now();
  if (tenth <= tenth_ && now - last_ < std::chrono::seconds(30)) return;
  tenth_ = std::max(tenth_, tenth);
  last_ = now;
  const double seconds = std::max(seconds_since(start_), 1e-9);
  const double rate = done / seconds;
  spdlog::info("{}: {:.0f}% of {}, {:.1f} MB/s, ETA {}", what_, 100.0 * done / total_,
               total_ >= 1e9 ? fmt::format("{:.2f} GB", total_ / 1e9) : fmt::format("{:.0f} MB", total_ / 1e6),
               rate / 1e6, duration_text(rate > 0 ? (total_ - std::min(done, total_)) / rate : 0));
}

}  // namespace ssmax
