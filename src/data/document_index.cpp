#include "data/document_index.h"

#include <cstring>
#include <utility>

#include "util/errors.h"
#include "util/little_endian.h"

namespace ssmax {
namespace {

constexpr char kMagic[8] = {'S', 'S', 'M', 'X', 'D', 'O', 'C', '\0'};
constexpr size_t kHeaderBytes = 32;
const char* const kRebuildHint = "(delete the dataset directory and run `ssmax-gpt prepare CONFIG`)";

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
  DocumentIndex index;
  index.file_ = MappedFile::open(path, "document index", kRebuildHint);
  const uint64_t file_bytes = index.file_.size();
  if (file_bytes < kHeaderBytes)
    throw RuntimeFailure(path + ": truncated: " + std::to_string(file_bytes) + " bytes, smaller than the " +
                         std::to_string(kHeaderBytes) + "-byte document index header " + kRebuildHint);
  const unsigned char* h = index.file_.data();
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
    throw RuntimeFailure(path() + ": positions of tokens [" + std::to_string(start_token) + ", " +
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
