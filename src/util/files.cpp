#include "util/files.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "util/errors.h"

namespace ssmax {
namespace fs = std::filesystem;

namespace {

std::string temp_path_for(const std::string& path) { return path + ".tmp." + std::to_string(::getpid()); }

// The temporary files being written, in fixed slots a signal handler can read: no allocation, no lock, only atomics
// and unlink. A slot is free (0), being filled (1) or names a file (2). Beyond kSlots files at once the rest are
// not listed: still removed on every error, only a signal may leave them.
constexpr int kSlots = 64;
constexpr size_t kPathBytes = 4096;
struct UnfinishedFile {
  std::atomic<int> state{0};
  char path[kPathBytes];
};
UnfinishedFile unfinished[kSlots];

int list_unfinished(const std::string& temp) {
  if (temp.size() >= kPathBytes) return -1;
  for (int slot = 0; slot < kSlots; ++slot) {
    int expected = 0;
    if (!unfinished[slot].state.compare_exchange_strong(expected, 1)) continue;
    std::memcpy(unfinished[slot].path, temp.c_str(), temp.size() + 1);
    unfinished[slot].state.store(2);
    return slot;
  }
  return -1;
}

void unlist_unfinished(int& slot) {
  if (slot >= 0) unfinished[slot].state.store(0);
  slot = -1;
}

// A DurableFile::commit_together under way, and a signal that came meanwhile.
std::atomic<bool> committing_together{false};
std::atomic<int> held_signal{0};

std::string parent_directory(const std::string& path) {
  const fs::path parent = fs::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

// fsync + close + rename + directory sync of a finished temporary file; removes it on failure.
void move_into_place(int fd, const std::string& temp, const std::string& path) {
  const auto fail = [&](const std::string& what) {
    const std::string why = errno_text();
    if (fd >= 0) ::close(fd);
    ::unlink(temp.c_str());
    throw RuntimeFailure(path + ": " + what + " failed: " + why + " (check free space and permissions)");
  };
  if (::fsync(fd) != 0) fail("fsync");
  const int closing = std::exchange(fd, -1);
  if (::close(closing) != 0) fail("close");
  if (::rename(temp.c_str(), path.c_str()) != 0) fail("rename of " + temp);
  sync_directory(parent_directory(path));
}

}  // namespace

std::string errno_text() { return std::strerror(errno); }

bool hold_signal_during_commit(int signal) {
  if (!committing_together.load()) return false;
  held_signal.store(signal);
  // Checked again: a commit that ended between the two loads may already have looked for a held signal.
  return committing_together.load();
}

void remove_unfinished_files() {
  for (auto& file : unfinished)
    if (file.state.load() == 2) ::unlink(file.path);
}

DurableFile::DurableFile(std::string path) : path_(std::move(path)), temp_(temp_path_for(path_)) {
  listed_ = list_unfinished(temp_);  // before it exists: a signal at any point after finds it
  fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    const std::string why = errno_text();
    unlist_unfinished(listed_);
    throw RuntimeFailure(path_ + ": cannot create " + temp_ + ": " + why);
  }
}

DurableFile::~DurableFile() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(temp_.c_str());
  }
  unlist_unfinished(listed_);
}

void DurableFile::fail(const std::string& what) {
  const std::string why = errno_text();
  ::close(std::exchange(fd_, -1));
  ::unlink(temp_.c_str());
  unlist_unfinished(listed_);
  throw RuntimeFailure(path_ + ": " + what + " failed: " + why + " (check free space and permissions)");
}

void DurableFile::write(const void* data, size_t bytes) {
  if (fd_ < 0) throw RuntimeFailure(path_ + ": write after the file was committed or failed");
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t written = ::write(fd_, p, bytes);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) fail("write");
    p += written;
    bytes -= static_cast<size_t>(written);
  }
}

void DurableFile::write_at(uint64_t offset, const void* data, size_t bytes) {
  if (fd_ < 0) throw RuntimeFailure(path_ + ": write after the file was committed or failed");
  const ssize_t written = ::pwrite(fd_, data, bytes, static_cast<off_t>(offset));
  if (written != static_cast<ssize_t>(bytes)) fail("write");
}

void DurableFile::commit() {
  if (fd_ < 0) throw RuntimeFailure(path_ + ": commit after the file was committed or failed");
  move_into_place(std::exchange(fd_, -1), temp_, path_);  // the temporary file is gone either way
  unlist_unfinished(listed_);
}

void DurableFile::commit_together(std::initializer_list<DurableFile*> files) {
  // Not a signal mask: that holds signals for this thread only, and a process-directed signal may land on any of
  // torch's threads. The handler asks hold_signal_during_commit instead.
  const auto raise_held = [] {
    committing_together.store(false);
    if (const int signal = held_signal.exchange(0)) ::raise(signal);
  };
  committing_together.store(true);
  try {
    for (DurableFile* file : files) file->commit();
  } catch (...) {
    raise_held();
    throw;
  }
  raise_held();
}

void write_file_atomic(const std::string& path, const std::string& text) {
  DurableFile file(path);
  file.write(text.data(), text.size());
  file.commit();
}

void sync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

bool is_temporary_file_name(const std::string& name) {
  const auto at = name.rfind(".tmp");
  if (at == std::string::npos) return false;
  const std::string rest = name.substr(at + 4);  // "" (older writers) or ".<pid>"
  return rest.empty() ||
         (rest.size() > 1 && rest[0] == '.' && rest.find_first_not_of("0123456789", 1) == std::string::npos);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw RuntimeFailure(path + ": cannot open for reading");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::string read_input_file(const std::string& path, const std::string& kind, const std::string& hint) {
  std::error_code error;
  const auto status = std::filesystem::status(path, error);
  if (!std::filesystem::exists(status))
    throw UsageError(path + ": no such " + kind + " file" + (hint.empty() ? "" : " (" + hint + ")"));
  if (std::filesystem::is_directory(status)) throw UsageError(path + ": is a directory; give a " + kind + " file");
  if (!std::filesystem::is_regular_file(status))
    throw UsageError(path + ": is not a regular file (a FIFO, socket or device); give a " + kind + " file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError(path + ": cannot open the " + kind + " file: " + errno_text());
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw UsageError(path + ": cannot read the " + kind + " file: " + errno_text());
  return buffer.str();
}

MappedFile MappedFile::open(const std::string& path, const std::string& what, const std::string& hint) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw RuntimeFailure(path + ": cannot open " + what + ": " + errno_text() + " " + hint);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const std::string why = errno_text();
    ::close(fd);
    throw RuntimeFailure(path + ": cannot stat: " + why);
  }
  MappedFile file;
  file.path_ = path;
  file.bytes_ = static_cast<uint64_t>(st.st_size);
  if (file.bytes_ > 0) {
    void* map = ::mmap(nullptr, file.bytes_, PROT_READ, MAP_PRIVATE, fd, 0);
    const std::string map_error = map == MAP_FAILED ? errno_text() : "";
    ::close(fd);  // the mapping keeps the file alive
    if (map == MAP_FAILED) throw RuntimeFailure(path + ": mmap failed: " + map_error);
    file.map_ = map;
  } else {
    ::close(fd);
  }
  return file;
}

MappedFile::MappedFile(MappedFile&& other) noexcept { *this = std::move(other); }

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    if (map_) ::munmap(map_, bytes_);
    path_ = std::move(other.path_);
    map_ = std::exchange(other.map_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (map_) ::munmap(map_, bytes_);
}

}  // namespace ssmax
