#include "util/dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "util/errors.h"
#include "util/files.h"

namespace ssmax {
namespace fs = std::filesystem;

namespace {

// This process's command line, for the lock file: what a refused user sees as the holder.
std::string own_command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (auto& c : raw)
    if (c == '\0') c = ' ';
  while (!raw.empty() && raw.back() == ' ') raw.pop_back();
  return raw;
}

}  // namespace

void hold_run_dir_lock(const std::string& dir) {
  static std::mutex mutex;
  // Canonical directory → the process that locked it. A forked child inherits the map but is another process:
  // for it the entry does not count, and its own attempt meets the parent's lock.
  static std::map<std::string, pid_t> held;
  std::lock_guard<std::mutex> guard(mutex);
  std::error_code error;
  const std::string key = fs::weakly_canonical(dir, error).string();
  if (auto it = held.find(key); it != held.end() && it->second == ::getpid()) return;

  const std::string path = (fs::path(dir) / "run.lock").string();
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw RuntimeFailure("cannot open the lock file " + path + ": " + errno_text());
  int rc;
  do rc = ::flock(fd, LOCK_EX | LOCK_NB);
  while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int lock_errno = errno;
    if (lock_errno != EWOULDBLOCK) {
      const std::string reason = errno_text();
      ::close(fd);
      throw RuntimeFailure("cannot lock " + path + ": " + reason);
    }
    std::string holder;
    char buffer[512];
    const ssize_t n = ::pread(fd, buffer, sizeof(buffer) - 1, 0);
    if (n > 0) holder.assign(buffer, static_cast<size_t>(n));
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    ::close(fd);
    throw UsageError("out_dir = '" + dir + "' is in use by another process" +
                     (holder.empty() ? std::string() : " (" + holder + ")") +
                     "; wait for it to finish, stop it, or pick another out_dir (--set out_dir=DIR)");
  }
  // Who holds it, for the message above. Informational only: the flock is the lock.
  std::ostringstream who;
  who << "pid " << ::getpid() << ": " << own_command_line() << "\n";
  const std::string text = who.str();
  if (::ftruncate(fd, 0) == 0) (void)!::pwrite(fd, text.data(), text.size(), 0);
  held[key] = ::getpid();  // fd stays open (and locked) until the process exits
}

}  // namespace ssmax
