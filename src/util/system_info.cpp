#include "util/system_info.h"

#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <thread>

#include "git_revision.h"

namespace ssmax {

namespace {

// The first processor's "key: value" lines of /proc/cpuinfo (every core of a machine reports the same model and
// flags), read once; empty where the file does not exist.
const std::map<std::string, std::string>& cpu_fields() {
  static const std::map<std::string, std::string> fields = [] {
    std::map<std::string, std::string> f;
    std::ifstream in("/proc/cpuinfo");
    for (std::string line; std::getline(in, line) && !line.empty();) {
      const auto colon = line.find(':');
      if (colon == std::string::npos || colon == 0) continue;
      const auto key_end = line.find_last_not_of(" \t", colon - 1);
      const auto value_start = line.find_first_not_of(' ', colon + 1);
      f.emplace(line.substr(0, key_end == std::string::npos ? 0 : key_end + 1),
                value_start == std::string::npos ? "" : line.substr(value_start));
    }
    return f;
  }();
  return fields;
}

std::string cpu_field(const std::string& key, const std::string& missing) {
  const auto it = cpu_fields().find(key);
  return it == cpu_fields().end() ? missing : it->second;
}

}  // namespace

std::string cpu_model() { return cpu_field("model name", "unknown"); }

std::string cpu_signature() {
  return cpu_model() + " (family " + cpu_field("cpu family", "?") + " model " + cpu_field("model", "?") + " stepping " +
         cpu_field("stepping", "?") + ")";
}

bool cpu_has_flag(const std::string& flag) {
  if ((" " + cpu_field("flags", "") + " ").find(" " + flag + " ") == std::string::npos) return false;
  const char* hidden = std::getenv("SSMAX_HIDE_CPU_FLAGS");
  std::string words = hidden ? hidden : "";
  std::replace(words.begin(), words.end(), ',', ' ');
  std::istringstream list(words);
  for (std::string word; list >> word;) {
    const bool prefix = word.back() == '*';  // "avx512*": every AVX-512 flag
    if (prefix ? flag.rfind(word.substr(0, word.size() - 1), 0) == 0 : flag == word) return false;
  }
  return true;
}

int hardware_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

std::string host_name() {
  char name[256] = {};
  return gethostname(name, sizeof(name) - 1) == 0 ? std::string(name) : "unknown";
}

std::string git_revision() { return SSMAX_GIT_REV; }

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;  // kilobytes on Linux
}

void keep_freed_memory_for_reuse() {
  // glibc's own settings win when the user gave any (MALLOC_MMAP_MAX_, MALLOC_TRIM_THRESHOLD_, GLIBC_TUNABLES).
  for (const char* name : {"MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"})
    if (std::getenv(name)) return;
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
}

}  // namespace ssmax
