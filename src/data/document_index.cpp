#include "data/document_index.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "util/errors.h"

namespace ssmax {
namespace {

constexpr char kMagic[8] = {'S', 'S', 'M', 'X', 'D', 'O', 'C', '\0'};
constexpr size_t kHeaderBytes = 32;
const char* const kRebuildHint = "(delete the dataset directory and run `ssmax-gpt prepare CONFIG`)";

// The format is little-endian on disk; these keep the code correct on any host.
void put_u32(unsigned char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
void put_u64(unsigned char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
uint32_t get_u32(const unsigned char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
uint64_t get_u64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

DocumentIndexWriter::DocumentIndexWriter(std::string path) : file_(std::move(path)) {
  buffer_.assign(kHeaderBytes, 0);  // the header is written for real by finish()
}

void DocumentIndexWriter::add(uint64_t start) {
  if (count_ == 0 ? start != 0 : start <= last_)
    throw RuntimeFailure(path() + ": document start " + std::to_string(start) + " after " + std::to_string(last_) +
                         " (starts must rise strictly from 0; a bug in prepare)");
  unsigned char bytes[8];
  put_u64(bytes, start);
  buffer_.insert(buffer_.end(), bytes, bytes + 8);
  last_ = start;
  ++count_;
  if (buffer_.size() >= (1 << 20)) flush();
}

void DocumentIndexWriter::flush() {
  file_.write(buffer_.data(), buffer_.size());
  buffer_.clear();
}

void DocumentIndexWriter::finish(uint64_t stream_tokens) {
  if (finished_) throw RuntimeFailure(path() + ": document index already finished");
  if (count_ > 0 && last_ >= stream_tokens)
    throw RuntimeFailure(path() + ": a document starts at " + std::to_string(last_) + ", past the stream's " +
                         std::to_string(stream_tokens) + " tokens (a bug in prepare)");
  if (count_ == 0 && stream_tokens > 0)
    throw RuntimeFailure(path() + ": no document starts in a stream of " + std::to_string(stream_tokens) +
                         " tokens (a bug in prepare)");
  flush();
  unsigned char header[kHeaderBytes] = {};
  std::memcpy(header, kMagic, sizeof kMagic);
  put_u32(header + 8, kDocumentIndexVersion);
  put_u64(header + 16, count_);
  put_u64(header + 24, stream_tokens);
  file_.write_at(0, header, kHeaderBytes);
  file_.commit();
  finished_ = true;
}

void DocumentIndex::write(const std::string& path, const std::vector<uint64_t>& starts, uint64_t stream_tokens) {
  DocumentIndexWriter writer(path);
  for (uint64_t start : starts) writer.add(start);
  writer.finish(stream_tokens);
}

DocumentIndex DocumentIndex::open(const std::string& path, uint64_t stream_tokens) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw RuntimeFailure(path + ": cannot open document index: " + errno_text() + " " + kRebuildHint);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const std::string why = errno_text();
    ::close(fd);
    throw RuntimeFailure(path + ": cannot stat: " + why);
  }
  const auto file_bytes = static_cast<uint64_t>(st.st_size);
  if (file_bytes < kHeaderBytes) {
    ::close(fd);
    throw RuntimeFailure(path + ": truncated: " + std::to_string(file_bytes) + " bytes, smaller than the " +
                         std::to_string(kHeaderBytes) + "-byte document index header " + kRebuildHint);
  }
  void* map = ::mmap(nullptr, file_bytes, PROT_READ, MAP_PRIVATE, fd, 0);
  const std::string map_error = map == MAP_FAILED ? errno_text() : "";
  ::close(fd);  // the mapping keeps the file alive
  if (map == MAP_FAILED) throw RuntimeFailure(path + ": mmap failed: " + map_error);

  DocumentIndex index;
  index.path_ = path;
  index.map_ = map;
  index.map_bytes_ = file_bytes;
  // From here on `index` owns the mapping: its destructor unmaps it if a check below throws.
  const auto* h = static_cast<const unsigned char*>(map);
  const auto fail = [&](const std::string& what) { throw RuntimeFailure(path + ": " + what + " " + kRebuildHint); };
  if (std::memcmp(h, kMagic, sizeof kMagic) != 0) fail("bad magic — not an ssmax-gpt document index");
  const uint32_t version = get_u32(h + 8);
  if (version != kDocumentIndexVersion)
    fail("document index version " + std::to_string(version) + ", this build reads version " +
         std::to_string(kDocumentIndexVersion));
  if (get_u32(h + 12) != 0) fail("corrupt header: reserved bytes are not zero");
  const uint64_t count = get_u64(h + 16);
  const uint64_t tokens = get_u64(h + 24);
  // Division, not multiplication, so a garbage count cannot overflow into a matching size.
  const uint64_t payload = file_bytes - kHeaderBytes;
  if (payload % 8 != 0 || payload / 8 != count)
    fail(std::string(payload / 8 < count ? "truncated" : "size mismatch") + ": header says " + std::to_string(count) +
         " documents but the file has " + std::to_string(file_bytes) + " bytes");
  if (tokens != stream_tokens)
    fail("describes a stream of " + std::to_string(tokens) + " tokens but the split holds " +
         std::to_string(stream_tokens));
  if ((count == 0) != (tokens == 0))
    fail(std::to_string(count) + " documents in a stream of " + std::to_string(tokens) + " tokens");
  const unsigned char* starts = h + kHeaderBytes;
  if (count > 0 && get_u64(starts) != 0) fail("the first document starts at " + std::to_string(get_u64(starts)));
  for (uint64_t i = 1; i < count; ++i) {
    const uint64_t prev = get_u64(starts + 8 * (i - 1)), here = get_u64(starts + 8 * i);
    if (here <= prev)
      fail("damaged: document " + std::to_string(i) + " starts at " + std::to_string(here) + ", not after " +
           std::to_string(prev));
  }
  if (count > 0 && get_u64(starts + 8 * (count - 1)) >= tokens)
    fail("damaged: the last document starts at " + std::to_string(get_u64(starts + 8 * (count - 1))) +
         ", past the stream's " + std::to_string(tokens) + " tokens");
  index.starts_ = starts;
  index.count_ = count;
  index.stream_tokens_ = tokens;
  return index;
}

DocumentIndex::DocumentIndex(DocumentIndex&& other) noexcept { *this = std::move(other); }

DocumentIndex& DocumentIndex::operator=(DocumentIndex&& other) noexcept {
  if (this != &other) {
    if (map_) ::munmap(map_, map_bytes_);
    path_ = std::move(other.path_);
    starts_ = std::exchange(other.starts_, nullptr);
    map_ = std::exchange(other.map_, nullptr);
    map_bytes_ = std::exchange(other.map_bytes_, 0);
    count_ = std::exchange(other.count_, 0);
    stream_tokens_ = std::exchange(other.stream_tokens_, 0);
  }
  return *this;
}

DocumentIndex::~DocumentIndex() {
  if (map_) ::munmap(map_, map_bytes_);
}

uint64_t DocumentIndex::start(size_t document) const { return get_u64(starts_ + 8 * document); }

size_t DocumentIndex::document_of(uint64_t token) const {
  size_t lo = 0, hi = count_;  // start(lo) <= token (start(0) = 0); the answer lies in [lo, hi)
  while (hi - lo > 1) {
    const size_t mid = lo + (hi - lo) / 2;
    if (start(mid) <= token) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return lo;
}

void DocumentIndex::positions(size_t start_token, size_t n, int64_t* dst) const {
  if (start_token > stream_tokens_ || n > stream_tokens_ - start_token)
    throw RuntimeFailure(path_ + ": positions of tokens [" + std::to_string(start_token) + ", " +
                         std::to_string(start_token + n) + ") asked, past the stream's " +
                         std::to_string(stream_tokens_) + " tokens");
  if (n == 0) return;
  size_t next = document_of(start_token) + 1;  // the next document to begin inside the range
  uint64_t begin = start_token;
  uint64_t boundary = next < count_ ? start(next) : UINT64_MAX;
  for (size_t i = 0; i < n; ++i) {
    const uint64_t token = start_token + i;
    if (token == boundary) {
      begin = token;
      boundary = ++next < count_ ? start(next) : UINT64_MAX;
    }
    dst[i] = static_cast<int64_t>(token - begin);
  }
}

}  // namespace ssmax
