#include "util/arg_checks.h"

#include <cmath>
#include <filesystem>
#include <set>

namespace ssmax {
namespace fs = std::filesystem;

void check_number(const std::string& option, double value, double min, double max, bool min_exclusive) {
  const bool low_ok = min_exclusive ? value > min : value >= min;
  if (std::isfinite(value) && low_ok && value <= max) return;
  std::string range;
  if (std::isinf(max)) range = (min_exclusive ? "> " : ">= ") + short_number(min);
  else range = "in " + std::string(min_exclusive ? "(" : "[") + short_number(min) + ", " + short_number(max) + "]";
  throw UsageError(option + " " + short_number(value) + ": must be a finite number " + range);
}

void check_distinct(const std::string& what, const std::vector<std::string>& items, bool as_paths) {
  std::set<std::string> seen;
  for (const auto& item : items) {
    std::string key = item;
    if (as_paths) {
      fs::path path = fs::path(item).lexically_normal();
      if (!path.has_filename() && path.has_parent_path()) path = path.parent_path();  // "run/" is "run"
      std::error_code error;
      const fs::path canonical = fs::weakly_canonical(path, error);
      key = error ? path.string() : canonical.string();
    }
    if (!seen.insert(key).second)
      throw UsageError(what + ": " + item + " is given twice" +
                       (as_paths ? " (it would be counted twice)" : "; give each value once"));
  }
}

void check_out_dir(const std::string& option, const std::string& dir) {
  if (!dir.empty() && fs::exists(dir) && !fs::is_directory(dir))
    throw UsageError(option + " " + dir + ": exists and is not a directory");
}

}  // namespace ssmax
