#include "kernels/fused_kernels.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <set>

#include "util/errors.h"
#include "util/text.h"

namespace ssmax {

bool fused_kernel_enabled(const std::string& name) {
  static const std::set<std::string> kNames = {"rms_norm", "qkv_rope", "cross_entropy", "adamw", "gelu", "gemm"};
  static const std::set<std::string> disabled = [] {
    std::set<std::string> names;
    const char* value = std::getenv("SSMAX_UNFUSED");
    for (const auto& item : split_list(value ? value : "")) {
      if (item != "all" && !kNames.count(item)) {
        std::string allowed = "all";
        for (const auto& n : kNames) allowed += ", " + n;
        throw UsageError("SSMAX_UNFUSED: unknown kernel '" + item + "' (allowed: " + allowed + ")");
      }
      names.insert(item);
    }
    return names;
  }();
  return !disabled.count("all") && !disabled.count(name);
}

int intra_op_threads_reached(int64_t tasks) {
  std::atomic<int> highest{0};
  at::parallel_for(0, tasks, 1, [&](int64_t, int64_t) {
    int mine = at::get_thread_num() + 1;
    int seen = highest.load();
    while (seen < mine && !highest.compare_exchange_weak(seen, mine)) {
    }
  });
  return highest.load();
}

}  // namespace ssmax
