#include "run/run_paths.h"

#include <cstdio>
#include <cstring>
#include <filesystem>

namespace ssmax {
namespace {

std::string step_file(int64_t step, const char* extension) {
  char name[64];
  std::snprintf(name, sizeof(name), "step_%08lld%s", static_cast<long long>(step), extension);
  return name;
}

}  // namespace

namespace fs = std::filesystem;

std::string RunPaths::file(const char* name) const { return (fs::path(dir_) / name).string(); }

std::string RunPaths::damaged_events(int n) const { return file(("events.damaged-" + std::to_string(n)).c_str()); }

std::string RunPaths::checkpoint(int64_t step) const {
  return (fs::path(dir_) / kCheckpoints / step_file(step, ".pt")).string();
}

std::string RunPaths::manifest(int64_t step) const {
  return (fs::path(dir_) / kCheckpoints / step_file(step, ".json")).string();
}

int64_t RunPaths::step_of(const std::string& file_name, const std::string& extension) {
  constexpr const char* kPrefix = "step_";
  const size_t prefix = std::strlen(kPrefix);
  if (file_name.size() <= prefix + extension.size() || file_name.compare(0, prefix, kPrefix) != 0 ||
      file_name.compare(file_name.size() - extension.size(), extension.size(), extension) != 0)
    return -1;
  const std::string digits = file_name.substr(prefix, file_name.size() - prefix - extension.size());
  int64_t step = 0;
  for (char c : digits) {
    if (c < '0' || c > '9' || step > (INT64_MAX - 9) / 10) return -1;
    step = step * 10 + (c - '0');
  }
  return step;
}

}  // namespace ssmax
