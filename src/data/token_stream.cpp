#include "data/token_stream.h"

#include <algorithm>
#include <cstdio>

#include "util/errors.h"

namespace ssmax {

TokenStream TokenStream::open(const std::vector<std::string>& paths) {
  if (paths.empty()) throw RuntimeFailure("a token stream needs at least one shard");
  TokenStream stream;
  for (const auto& path : paths) {
    TokenShard shard = TokenShard::open(path);
    if (!stream.shards_.empty() && shard.vocab_size() != stream.vocab_size()) {
      throw RuntimeFailure(path + ": encoded with vocabulary " + std::to_string(shard.vocab_size()) + " but " +
                           paths.front() + " with " + std::to_string(stream.vocab_size()) +
                           " (shards of one split must come from one tokenizer; prepare the dataset again)");
    }
    stream.starts_.push_back(stream.size_);
    stream.size_ += shard.size();
    stream.shards_.push_back(std::move(shard));
  }
  stream.name_ = paths.front();
  if (paths.size() > 1) stream.name_ += " (+" + std::to_string(paths.size() - 1) + " more shards)";
  return stream;
}

size_t TokenStream::shard_of(size_t i) const {
  // The last shard starting at or before i; empty shards share their start with the next one and are skipped.
  return static_cast<size_t>(std::upper_bound(starts_.begin(), starts_.end(), i) - starts_.begin()) - 1;
}

uint32_t TokenStream::at(size_t i) const {
  if (i >= size_)
    throw RuntimeFailure(name_ + ": token " + std::to_string(i) + " is past its end (" + std::to_string(size_) +
                         " tokens)");
  const size_t k = shard_of(i);
  return shards_[k].at(i - starts_[k]);
}

void TokenStream::copy_to(size_t start, size_t n, int64_t* dst) const {
  if (start > size_ || n > size_ - start) {
    throw RuntimeFailure(name_ + ": tokens [" + std::to_string(start) + ", " + std::to_string(start + n) +
                         ") are past its end (" + std::to_string(size_) + " tokens)");
  }
  while (n > 0) {
    const size_t k = shard_of(start);
    const size_t offset = start - starts_[k];
    const size_t take = std::min(n, shards_[k].size() - offset);
    shards_[k].copy_to(offset, take, dst);
    start += take;
    dst += take;
    n -= take;
  }
}

ShardedWriter::ShardedWriter(std::string dir, std::string prefix, uint32_t vocab_size, uint64_t shard_tokens)
    : dir_(std::move(dir)), prefix_(std::move(prefix)), vocab_size_(vocab_size), shard_tokens_(shard_tokens) {
  if (shard_tokens_ == 0) throw RuntimeFailure("data.shard_tokens must be positive");
}

void ShardedWriter::append(const std::vector<uint32_t>& ids) {
  size_t done = 0;
  while (done < ids.size()) {
    if (!current_) {
      char name[64];
      std::snprintf(name, sizeof name, "%s-%06zu.bin", prefix_.c_str(), names_.size());
      names_.push_back(name);
      current_ = std::make_unique<ShardWriter>(dir_ + "/" + name, vocab_size_);
    }
    const size_t take = std::min<uint64_t>(ids.size() - done, shard_tokens_ - current_->count());
    current_->append(ids.data() + done, take);
    done += take;
    tokens_ += take;
    if (current_->count() == shard_tokens_) {
      current_->finish();
      current_.reset();
    }
  }
}

std::vector<std::string> ShardedWriter::finish() {
  if (!current_ && names_.empty()) {  // an empty split gets one empty shard
    names_.push_back(prefix_ + "-000000.bin");
    current_ = std::make_unique<ShardWriter>(dir_ + "/" + names_.back(), vocab_size_);
  }
  if (current_) {
    current_->finish();
    current_.reset();
  }
  return names_;
}

}  // namespace ssmax
