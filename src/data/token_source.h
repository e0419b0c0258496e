#pragma once
// Tokens to evaluate on: memory-mapped shards (never copied whole) or the ids of a tokenized text file,
// behind one interface.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/document_index.h"
#include "data/token_stream.h"

namespace ssmax {

class TokenSource {
 public:
  // `documents_path`: the split's document index (PreparedDataset::train_documents / val_documents), or "" when its
  // boundaries are unknown (datasets of format ≤ 3).
  static TokenSource from_shards(const std::vector<std::string>& paths, const std::string& documents_path = "");
  static TokenSource from_ids(std::vector<uint32_t> ids, std::string name);
  size_t size() const;
  // ids [start, start+n) as int64; throws RuntimeFailure naming the source when past its end.
  void copy_to(size_t start, size_t n, int64_t* dst) const;
  std::vector<uint32_t> slice(size_t start, size_t n) const;
  const std::string& name() const { return name_; }
  // Whether document boundaries are known (shards opened with their index; never for from_ids).
  bool has_documents() const { return documents_ != nullptr; }
  // Each token of [start, start+n): its position within its document, counted from `start` (DocumentIndex::
  // positions). Throws RuntimeFailure naming the source when it has no index or the range runs past its end.
  void positions(size_t start, size_t n, int64_t* dst) const;

 private:
  std::shared_ptr<TokenStream> shard_;
  std::shared_ptr<DocumentIndex> documents_;
  std::vector<uint32_t> ids_;
  std::string name_;
};

}  // namespace ssmax
