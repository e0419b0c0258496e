#pragma once
// Token shards: a binary file of token ids behind a small validated header.
//
// Layout (little-endian):
//   bytes 0..7    magic "SSMXTOK\0"
//   bytes 8..11   uint32 format version (kShardVersion)
//   bytes 12..15  uint32 bytes per token: 2 (uint16) or 4 (uint32)
//   bytes 16..23  uint64 token count
//   bytes 24..27  uint32 vocabulary size the ids were encoded with
//   bytes 28..31  reserved, zero
//   bytes 32..    token ids
// The reader checks all of it (magic, version, dtype, vocab, and that the file size matches the count)
// and memory-maps the ids, so a large shard costs no heap.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "util/files.h"

namespace ssmax {

constexpr uint32_t kShardVersion = 1;

// Writes one shard as ids arrive, in bounded memory: ids as uint16 when vocab_size <= 65536, else uint32, into a
// DurableFile (util/files.h); finish() fills in the header's count and commits it, so readers see a complete
// shard or none. An unfinished writer removes its temporary file when destroyed.
class ShardWriter {
 public:
  ShardWriter(std::string path, uint32_t vocab_size);
  ~ShardWriter();
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;
  // Throws RuntimeFailure naming the file for an id outside the vocabulary or a failed write.
  void append(const uint32_t* ids, size_t n);
  void finish();
  uint64_t count() const { return count_; }
  const std::string& path() const { return file_.path(); }

 private:
  void flush();
  DurableFile file_;
  bool finished_ = false;
  uint32_t vocab_size_, bytes_per_token_;
  uint64_t count_ = 0;
  std::vector<unsigned char> buffer_;
};

// A whole shard at once (ShardWriter underneath).
void write_shard(const std::string& path, const std::vector<uint32_t>& ids, uint32_t vocab_size);

class TokenShard {
 public:
  // Throws RuntimeFailure naming the file and what is wrong (bad magic, version, truncated, ...).
  static TokenShard open(const std::string& path);
  TokenShard(TokenShard&&) noexcept = default;
  TokenShard& operator=(TokenShard&&) noexcept = default;

  size_t size() const { return count_; }
  uint32_t vocab_size() const { return vocab_size_; }
  const std::string& path() const { return file_.path(); }
  uint32_t at(size_t i) const;
  // Copies ids [start, start+n) into dst as int64 (what torch embedding wants). Caller checks bounds.
  void copy_to(size_t start, size_t n, int64_t* dst) const;

 private:
  TokenShard() = default;
  MappedFile file_;
  const unsigned char* data_ = nullptr;  // start of the ids inside file_'s mapping (it stays put when moved)
  size_t count_ = 0;
  uint32_t bytes_per_token_ = 2;
  uint32_t vocab_size_ = 0;
};

}  // namespace ssmax
