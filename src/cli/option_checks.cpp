#include "cli/option_checks.h"

#include <cmath>
#include <filesystem>
#include <set>

#include "config/schema.h"
#include "util/errors.h"
#include "util/text.h"

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

void add_runtime_options(CLI::App& app, EvalRuntimeArgs& runtime) {
  app.add_option("--device", runtime.device, "auto (CUDA if available), cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--threads", runtime.threads, "LibTorch intra-op threads; 0 = all cores")->capture_default_str();
  app.add_option("--precision", runtime.precision,
                 "fp32, or bf16: the forward passes under bf16 autocast (faster on GPUs and on CPUs with AMX or "
                 "AVX-512-BF16; logits and losses rounded accordingly)")
      ->capture_default_str();
}

void check_runtime(const EvalRuntimeArgs& runtime) {
  if (!is_device_name(runtime.device))
    throw UsageError("--device " + runtime.device + ": expected auto, cpu, cuda or cuda:N");
  if (runtime.threads < 0 || runtime.threads > 1024)
    throw UsageError("--threads " + std::to_string(runtime.threads) + ": must be in [0, 1024] (0 = all cores)");
  if (runtime.precision != "fp32" && runtime.precision != "bf16")
    throw UsageError("--precision " + runtime.precision + ": expected fp32 or bf16");
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

CLI::Validator decimal_digits() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        // A leading zero too: CLI11 would read "0256" as octal.
        const bool decimal = !text.empty() && text.find_first_not_of("0123456789") == std::string::npos &&
                             (text.size() == 1 || text[0] != '0');
        return decimal ? "" : "'" + text + "' is not a decimal number (digits only, no leading zero)";
      },
      "DECIMAL");
}

}  // namespace ssmax
