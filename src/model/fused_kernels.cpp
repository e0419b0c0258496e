#include "model/fused_kernels.h"

#include <cstdlib>
#include <set>

#include "util/errors.h"
#include "util/text.h"

namespace ssmax {

bool fused_kernel_enabled(const std::string& name) {
  static const std::set<std::string> kNames = {"rms_norm", "qkv_rope", "cross_entropy", "adamw"};
  static const std::set<std::string> disabled = [] {
    std::set<std::string> names;
    const char* value = std::getenv("SSMAX_UNFUSED");
    for (const auto& item : split_list(value ? value : "")) {
      if (item != "all" && !kNames.count(item))
        throw UsageError("SSMAX_UNFUSED: unknown kernel '" + item +
                         "' (allowed: all, rms_norm, qkv_rope, cross_entropy, adamw)");
      names.insert(item);
    }
    return names;
  }();
  return !disabled.count("all") && !disabled.count(name);
}

}  // namespace ssmax
