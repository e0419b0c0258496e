#include "util/machine_load.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "util/system_info.h"

namespace ssmax {
namespace {

// Busy ticks of the whole machine: user, nice, system, irq, softirq and steal of /proc/stat's "cpu" line (idle and
// iowait are not busy; guest time is already inside user).
int64_t machine_busy_ticks() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  int64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  if (!(in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq) || cpu != "cpu") return 0;
  in >> steal;  // absent on old kernels
  return user + nice + system + irq + softirq + steal;
}

// This process's user + system ticks, all threads: fields 14 and 15 of /proc/self/stat, counted after the command
// name's closing parenthesis (the name may hold spaces).
int64_t own_ticks() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  std::getline(in, line);
  const auto close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(line.substr(close + 2));
  std::string field;
  int64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stoll(field);
    if (i == 15) stime = std::stoll(field);
  }
  return utime + stime;
}

}  // namespace

LoadWatch::LoadWatch()
    : start_(std::chrono::steady_clock::now()), machine_busy_(machine_busy_ticks()), own_(own_ticks()) {}

double LoadWatch::others_cores() const {
  const auto until = start_ + kMinWindow;
  if (std::chrono::steady_clock::now() < until) std::this_thread::sleep_until(until);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double ticks = static_cast<double>((machine_busy_ticks() - machine_busy_) - (own_ticks() - own_));
  return std::max(0.0, ticks / static_cast<double>(sysconf(_SC_CLK_TCK)) / seconds);
}

bool MeasurementConditions::steady(int cores) const {
  const double free_cores = std::max(0, cores - threads);
  return others_cores <= free_cores + 0.25 && spread <= 0.2;
}

std::string MeasurementConditions::describe() const {
  return fmt::format("others kept {:.1f} of {} cores busy; spread {:.0f} %", others_cores, hardware_threads(),
                     100 * spread);
}

nlohmann::json MeasurementConditions::to_json() const {
  return {{"others_cores", others_cores}, {"spread", spread}, {"threads", threads}, {"measurements", measurements}};
}

MeasurementConditions MeasurementConditions::from_json(const nlohmann::json& j) {
  MeasurementConditions c;
  c.others_cores = 1e9;  // unknown: not steady
  if (!j.is_object()) return c;
  const auto number = [&](const char* key, double fallback) {
    return j.contains(key) && j[key].is_number() ? j[key].get<double>() : fallback;
  };
  c.others_cores = number("others_cores", 1e9);
  c.spread = number("spread", 0);
  c.threads = static_cast<int>(number("threads", 1));
  c.measurements = std::max(1, static_cast<int>(number("measurements", 1)));
  return c;
}

}  // namespace ssmax
