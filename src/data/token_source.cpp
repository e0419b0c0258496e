#include "data/token_source.h"

#include "util/errors.h"

namespace ssmax {

TokenSource TokenSource::from_shards(const std::vector<std::string>& paths, const std::string& documents_path) {
  TokenSource source;
  source.shard_ = std::make_shared<TokenStream>(TokenStream::open(paths));
  source.name_ = source.shard_->name();
  if (!documents_path.empty())
    source.documents_ = std::make_shared<DocumentIndex>(DocumentIndex::open(documents_path, source.shard_->size()));
  return source;
}

TokenSource TokenSource::from_ids(std::vector<uint32_t> ids, std::string name) {
  TokenSource source;
  source.ids_ = std::move(ids);
  source.name_ = std::move(name);
  return source;
}

size_t TokenSource::size() const { return shard_ ? shard_->size() : ids_.size(); }

void TokenSource::copy_to(size_t start, size_t n, int64_t* dst) const {
  if (start + n > size())
    throw RuntimeFailure(name_ + ": tokens [" + std::to_string(start) + ", " + std::to_string(start + n) +
                         ") are past its end (" + std::to_string(size()) + " tokens)");
  if (shard_) return shard_->copy_to(start, n, dst);
  for (size_t i = 0; i < n; ++i) dst[i] = ids_[start + i];
}

std::vector<uint32_t> TokenSource::slice(size_t start, size_t n) const {
  std::vector<int64_t> wide(n);
  copy_to(start, n, wide.data());
  return std::vector<uint32_t>(wide.begin(), wide.end());
}

void TokenSource::positions(size_t start, size_t n, int64_t* dst) const {
  if (!documents_)
    throw RuntimeFailure(name_ + ": its document boundaries are unknown (a dataset of format 3 or older, or ids of a " +
                         "text file); prepare the dataset again to record them");
  if (start > size() || n > size() - start)
    throw RuntimeFailure(name_ + ": tokens [" + std::to_string(start) + ", " + std::to_string(start + n) +
                         ") are past its end (" + std::to_string(size()) + " tokens)");
  documents_->positions(start, n, dst);
}

}  // namespace ssmax
