#pragma once
// Every file the program publishes goes through DurableFile: it is written under a temporary name beside its
// destination, flushed to disk (fsync, checked), renamed over the destination and the directory entry synced.
// A crash or a full disk leaves the old file or the new one, never a mixture, and never a user's file half
// overwritten. Errors are RuntimeFailure naming the file and the system's reason. The temporary files being written
// are listed where a signal handler can remove them (remove_unfinished_files), so a command stopped by SIGINT or
// SIGTERM leaves no "<name>.tmp.<pid>" behind either.
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>

namespace ssmax {

class DurableFile {
 public:
  explicit DurableFile(std::string path);  // creates <path>.tmp.<pid>
  ~DurableFile();                          // not committed: the temporary file is removed
  DurableFile(const DurableFile&) = delete;
  DurableFile& operator=(const DurableFile&) = delete;

  void write(const void* data, size_t bytes);                      // appends
  void write_at(uint64_t offset, const void* data, size_t bytes);  // e.g. a header filled in at the end
  void commit();  // fsync, close, rename into place, sync the directory
  // Commits every file with SIGINT, SIGTERM and SIGHUP held until all are in place (hold_signal_during_commit):
  // files that belong together (a model and its description) are all old or all new after a signal.
  static void commit_together(std::initializer_list<DurableFile*> files);

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_; }

 private:
  [[noreturn]] void fail(const std::string& what);
  std::string path_, temp_;
  int fd_ = -1;
  int listed_ = -1;  // the slot that lists temp_ for remove_unfinished_files
};

// Replaces `path` with `text` durably (see DurableFile).
void write_file_atomic(const std::string& path, const std::string& text);

// Unlinks every temporary file still being written. Async-signal-safe: for a handler of a signal that ends the
// process (util/interrupt.h), and nothing else.
void remove_unfinished_files();

// For that handler, on whichever thread the signal lands: true when a commit_together is under way, which then
// raises `signal` again once its files are in place (the handler returns and lets it finish). Async-signal-safe.
bool hold_signal_during_commit(int signal);

// Makes a rename in `dir` durable. Best effort: some filesystems refuse to sync a directory.
void sync_directory(const std::string& dir);

// A leftover of an interrupted DurableFile (or of the older "<name>.tmp" writers).
bool is_temporary_file_name(const std::string& file_name);

// Whole file as a string; throws RuntimeFailure naming the path if it cannot be read.
std::string read_file(const std::string& path);

// A file the user named (a config, a study file): whole, as a string. Throws UsageError naming the path and
// `kind` ("config", "study") when it is missing, a directory, not a regular file (a FIFO would block the read
// forever) or unreadable, with `hint` (e.g. "presets are in configs/") appended to "no such file".
std::string read_input_file(const std::string& path, const std::string& kind, const std::string& hint = "");

// A whole file mapped read-only: its bytes cost no heap, and the mapping lives (and the file with it) until the
// object is destroyed. Move-only; a moved-from object maps nothing.
class MappedFile {
 public:
  // Throws RuntimeFailure "PATH: cannot open WHAT: reason HINT" (and likewise for stat and mmap); `hint` says how to
  // make the file again. An empty file maps to size() 0.
  static MappedFile open(const std::string& path, const std::string& what, const std::string& hint);
  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const unsigned char* data() const { return static_cast<const unsigned char*>(map_); }
  uint64_t size() const { return bytes_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  void* map_ = nullptr;
  uint64_t bytes_ = 0;
};

// The system's reason for the last failed call (strerror(errno)).
std::string errno_text();

}  // namespace ssmax
