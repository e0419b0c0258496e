#include "util/machine_cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "util/files.h"

namespace ssmax {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

json read_cache() {
  const std::string path = machine_cache_path();
  std::error_code error;
  if (!fs::exists(path, error)) return json::object();
  try {
    json cache = json::parse(read_file(path));
    return cache.is_object() ? cache : json::object();
  } catch (const std::exception&) {
    return json::object();  // damaged: measured again and rewritten
  }
}

// flock on "<cache>.lock" for the lifetime of the object; no lock (and no error) where the file cannot be opened.
class CacheLock {
 public:
  explicit CacheLock(const std::string& path) : fd_(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)) {
    if (fd_ >= 0)
      while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
      }
  }
  ~CacheLock() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the lock
  }
  CacheLock(const CacheLock&) = delete;
  CacheLock& operator=(const CacheLock&) = delete;

 private:
  int fd_;
};

}  // namespace

std::string machine_cache_path() {
  if (const char* dir = std::getenv("SSMAX_CACHE_DIR"); dir && *dir)
    return (fs::path(dir) / "machine_speed.json").string();
  const char* home = std::getenv("HOME");
  return (fs::path(home && *home ? home : "/tmp") / ".cache" / "ssmax-gpt" / "machine_speed.json").string();
}

std::optional<json> machine_cache_get(const std::string& key) {
  const json cache = read_cache();
  if (!cache.contains(key)) return std::nullopt;
  return cache[key];
}

json machine_cache_put(const std::string& key, const json& value,
                       const std::function<bool(const json&)>& keep_existing_if) {
  const std::string path = machine_cache_path();
  try {
    fs::create_directories(fs::path(path).parent_path());
    CacheLock lock(path + ".lock");
    json cache = read_cache();
    if (keep_existing_if && cache.contains(key) && keep_existing_if(cache[key])) return cache[key];
    cache[key] = value;
    write_file_atomic(path, cache.dump(2) + "\n");
  } catch (const std::exception& e) {
    spdlog::warn("{}: not written ({}); it is measured again next time", path, e.what());
  }
  return value;
}

}  // namespace ssmax
