#pragma once
// A split's token shards as one sequence. Prepare writes a split into fixed-size shards (ShardedWriter); training
// and evaluation read them back as one stream (TokenStream), so a window may span two shards and the batches are
// the same whatever the shard size.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/shard.h"

namespace ssmax {

class TokenStream {
 public:
  // Memory-maps every shard (no heap per token). Throws RuntimeFailure naming the shard that is unreadable or
  // was encoded with another vocabulary than the first.
  static TokenStream open(const std::vector<std::string>& paths);

  size_t size() const { return size_; }
  uint32_t vocab_size() const { return shards_.front().vocab_size(); }
  size_t shard_count() const { return shards_.size(); }
  // The first shard's path, or "FIRST (+N more shards)": how messages name the stream.
  const std::string& name() const { return name_; }
  uint32_t at(size_t i) const;
  // Copies ids [start, start+n) into dst as int64 (what torch embedding wants), across shard boundaries.
  // Throws RuntimeFailure naming the stream when the range runs past its end.
  void copy_to(size_t start, size_t n, int64_t* dst) const;

 private:
  TokenStream() = default;
  size_t shard_of(size_t i) const;  // index of the shard holding token i
  std::vector<TokenShard> shards_;
  std::vector<size_t> starts_;  // starts_[k] = tokens before shard k
  size_t size_ = 0;
  std::string name_;
};

// Appends one split's tokens to shards of `shard_tokens` ids each (the last one shorter), named
// PREFIX-000000.bin, PREFIX-000001.bin, ... in `dir`. Each shard is complete on disk (fsynced and renamed into
// place) as soon as it fills, so memory stays at one write buffer whatever the corpus size.
class ShardedWriter {
 public:
  ShardedWriter(std::string dir, std::string prefix, uint32_t vocab_size, uint64_t shard_tokens);
  void append(const std::vector<uint32_t>& ids);
  // Finishes the last shard (an empty split still gets one, empty, shard); returns the file names in order.
  std::vector<std::string> finish();
  uint64_t tokens() const { return tokens_; }

 private:
  std::string dir_, prefix_;
  uint32_t vocab_size_;
  uint64_t shard_tokens_, tokens_ = 0;
  std::unique_ptr<ShardWriter> current_;
  std::vector<std::string> names_;
};

}  // namespace ssmax
