#include "data/shard.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "util/errors.h"
#include "util/little_endian.h"

namespace ssmax {

namespace {

constexpr char kMagic[8] = {'S', 'S', 'M', 'X', 'T', 'O', 'K', '\0'};
constexpr size_t kHeaderBytes = 32;
const char* const kRebuildHint = "(delete the dataset directory and run `ssmax-gpt prepare CONFIG`)";

// The position of the first id >= vocab, or count. Blocks are scanned for their maximum first (a loop the compiler
// vectorises); only a block holding a bad id is searched.
uint64_t first_id_outside(const unsigned char* ids, uint64_t count, uint32_t bytes_per_token, uint32_t vocab) {
  if (bytes_per_token == 2 && vocab >= 65536) return count;
  constexpr uint64_t kBlock = 4096;
  for (uint64_t start = 0; start < count; start += kBlock) {
    const uint64_t end = std::min(count, start + kBlock);
    uint32_t largest = 0;
    for (uint64_t i = start; i < end; ++i)
      largest = std::max(largest, bytes_per_token == 2 ? get_u16(ids + 2 * i) : get_u32(ids + 4 * i));
    if (largest < vocab) continue;
    for (uint64_t i = start; i < end; ++i)
      if ((bytes_per_token == 2 ? get_u16(ids + 2 * i) : get_u32(ids + 4 * i)) >= vocab) return i;
  }
  return count;
}

}  // namespace

ShardWriter::ShardWriter(std::string path, uint32_t vocab_size)
    : file_(path), vocab_size_(vocab_size), bytes_per_token_(vocab_size <= 65536 ? 2 : 4) {
  if (vocab_size == 0) throw RuntimeFailure(path + ": cannot write a shard with vocabulary size 0");
  buffer_.assign(kHeaderBytes, 0);  // the header is written for real by finish()
}

ShardWriter::~ShardWriter() = default;

void ShardWriter::append(const uint32_t* ids, size_t n) {
  constexpr size_t kFlushBytes = 1 << 20;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t id = ids[i];
    // Catching a bad id here is cheap and far clearer than an index error deep inside training.
    if (id >= vocab_size_) {
      throw RuntimeFailure(path() + ": token id " + std::to_string(id) + " at position " + std::to_string(count_ + i) +
                           " is outside the vocabulary of " + std::to_string(vocab_size_));
    }
    buffer_.push_back(static_cast<unsigned char>(id));
    buffer_.push_back(static_cast<unsigned char>(id >> 8));
    if (bytes_per_token_ == 4) {
      buffer_.push_back(static_cast<unsigned char>(id >> 16));
      buffer_.push_back(static_cast<unsigned char>(id >> 24));
    }
    if (buffer_.size() >= kFlushBytes) flush();
  }
  count_ += n;
}

void ShardWriter::flush() {
  file_.write(buffer_.data(), buffer_.size());
  buffer_.clear();
}

void ShardWriter::finish() {
  if (finished_) throw RuntimeFailure(path() + ": shard already finished");
  flush();
  unsigned char header[kHeaderBytes] = {};
  std::memcpy(header, kMagic, sizeof kMagic);
  put_u32(header + 8, kShardVersion);
  put_u32(header + 12, bytes_per_token_);
  put_u64(header + 16, count_);
  put_u32(header + 24, vocab_size_);
  file_.write_at(0, header, kHeaderBytes);
  file_.commit();
  finished_ = true;
}

void write_shard(const std::string& path, const std::vector<uint32_t>& ids, uint32_t vocab_size) {
  ShardWriter writer(path, vocab_size);
  writer.append(ids.data(), ids.size());
  writer.finish();
}

TokenShard TokenShard::open(const std::string& path) {
  TokenShard shard;
  shard.file_ = MappedFile::open(path, "token shard", kRebuildHint);
  const uint64_t file_bytes = shard.file_.size();
  if (file_bytes < kHeaderBytes)
    throw RuntimeFailure(path + ": truncated: " + std::to_string(file_bytes) + " bytes, smaller than the " +
                         std::to_string(kHeaderBytes) + "-byte shard header " + kRebuildHint);
  const unsigned char* h = shard.file_.data();
  if (std::memcmp(h, kMagic, sizeof kMagic) != 0) {
    throw RuntimeFailure(path + ": bad magic — not an ssmax-gpt token shard " + kRebuildHint);
  }
  const uint32_t version = get_u32(h + 8);
  if (version != kShardVersion) {
    throw RuntimeFailure(path + ": shard format version " + std::to_string(version) + ", this build reads version " +
                         std::to_string(kShardVersion) + " " + kRebuildHint);
  }
  const uint32_t bytes_per_token = get_u32(h + 12);
  if (bytes_per_token != 2 && bytes_per_token != 4) {
    throw RuntimeFailure(path + ": corrupt header: " + std::to_string(bytes_per_token) +
                         " bytes per token (expected 2 or 4) " + kRebuildHint);
  }
  const uint64_t count = get_u64(h + 16);
  const uint32_t vocab = get_u32(h + 24);
  if (vocab == 0 || (bytes_per_token == 2 && vocab > 65536)) {
    throw RuntimeFailure(path + ": corrupt header: vocabulary size " + std::to_string(vocab) + " with " +
                         std::to_string(bytes_per_token) + "-byte tokens " + kRebuildHint);
  }
  // Division, not multiplication, so a garbage count cannot overflow into a matching size.
  const uint64_t payload = file_bytes - kHeaderBytes;
  if (payload % bytes_per_token != 0 || payload / bytes_per_token != count) {
    const std::string expected = count <= payload ? std::to_string(kHeaderBytes + count * bytes_per_token)
                                                  : "more than " + std::to_string(file_bytes);
    throw RuntimeFailure(path + ": " + (payload / bytes_per_token < count ? "truncated" : "size mismatch") +
                         ": header says " + std::to_string(count) + " tokens (" + expected + " bytes) but file has " +
                         std::to_string(file_bytes) + " bytes " + kRebuildHint);
  }
  // A flipped bit in an id would index past the embedding table mid-run; one pass over the mapped ids (~0.1 s per
  // 100M tokens) finds it now, naming the position.
  const uint64_t bad = first_id_outside(h + kHeaderBytes, count, bytes_per_token, vocab);
  if (bad < count) {
    const uint32_t id =
        bytes_per_token == 2 ? get_u16(h + kHeaderBytes + 2 * bad) : get_u32(h + kHeaderBytes + 4 * bad);
    throw RuntimeFailure(path + ": damaged: token id " + std::to_string(id) + " at position " + std::to_string(bad) +
                         " is outside the vocabulary of " + std::to_string(vocab) + " " + kRebuildHint);
  }
  shard.data_ = h + kHeaderBytes;
  shard.count_ = count;
  shard.bytes_per_token_ = bytes_per_token;
  shard.vocab_size_ = vocab;
  return shard;
}

uint32_t TokenShard::at(size_t i) const {
  const unsigned char* p = data_ + i * bytes_per_token_;
  if (bytes_per_token_ == 2) return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8);
  return get_u32(p);
}

void TokenShard::copy_to(size_t start, size_t n, int64_t* dst) const {
  if (bytes_per_token_ == 2) {
    const unsigned char* p = data_ + start * 2;
    for (size_t i = 0; i < n; ++i, p += 2) {
      dst[i] = static_cast<int64_t>(p[0] | (static_cast<uint32_t>(p[1]) << 8));
    }
  } else {
    const unsigned char* p = data_ + start * 4;
    for (size_t i = 0; i < n; ++i, p += 4) dst[i] = static_cast<int64_t>(get_u32(p));
  }
}

}  // namespace ssmax
