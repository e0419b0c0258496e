#pragma once
// Tokens to evaluate on: memory-mapped shards (never copied whole) or the ids of a tokenized text file,
// behind one interface.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/token_stream.h"

namespace ssmax {

class TokenSource {
 public:
  static TokenSource from_shards(const std::vector<std::string>& paths);
  static TokenSource from_ids(std::vector<uint32_t> ids, std::string name);
  size_t size() const;
  // ids [start, start+n) as int64; throws RuntimeFailure naming the source when past its end.
  void copy_to(size_t start, size_t n, int64_t* dst) const;
  std::vector<uint32_t> slice(size_t start, size_t n) const;
  const std::string& name() const { return name_; }

 private:
  std::shared_ptr<TokenStream> shard_;
  std::vector<uint32_t> ids_;
  std::string name_;
};

}  // namespace ssmax
