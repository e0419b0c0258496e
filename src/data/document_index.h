#pragma once
// Where documents begin in a split's token stream (dataset format 4): what lets attention and positions stay inside
// one document of a packed training window.
//
// Layout (little-endian), <split>-documents.bin:
//   bytes 0..7    magic "SSMXDOC\0"
//   bytes 8..11   uint32 version (kDocumentIndexVersion)
//   bytes 12..15  uint32 reserved, zero
//   bytes 16..23  uint64 document count
//   bytes 24..31  uint64 token count of the split's stream the index describes
//   bytes 32..    uint64 per document: the offset in the stream where it begins, strictly increasing, the first 0
// An empty stream has no documents. A document is what the loader must not join to its neighbours: a source's
// document, or the part of one that a split holds between two pieces that went to the other split. The reader
// memory-maps the starts (no heap per document) and checks everything before anyone reads them.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "util/files.h"

namespace ssmax {

constexpr uint32_t kDocumentIndexVersion = 1;

// Writes an index as starts arrive, in bounded memory (a DurableFile: readers see the whole file or none).
class DocumentIndexWriter {
 public:
  explicit DocumentIndexWriter(std::string path);
  // Throws RuntimeFailure (a bug, not bad input) unless starts are strictly increasing from 0.
  void add(uint64_t start);
  // Fills in the header and commits; throws RuntimeFailure when a start is not below `stream_tokens`.
  void finish(uint64_t stream_tokens);
  uint64_t documents() const { return count_; }
  const std::string& path() const { return file_.path(); }

 private:
  void flush();
  DurableFile file_;
  uint64_t count_ = 0, last_ = 0;
  bool finished_ = false;
  std::vector<unsigned char> buffer_;
};

class DocumentIndex {
 public:
  // Maps and validates `path` (magic, version, size against the count, starts strictly increasing from 0 and below
  // the stream's end, the recorded stream length equal to `stream_tokens`). Throws RuntimeFailure naming the file
  // and how to rebuild it.
  static DocumentIndex open(const std::string& path, uint64_t stream_tokens);
  // The whole index at once (DocumentIndexWriter underneath).
  static void write(const std::string& path, const std::vector<uint64_t>& starts, uint64_t stream_tokens);

  DocumentIndex(DocumentIndex&&) noexcept = default;
  DocumentIndex& operator=(DocumentIndex&&) noexcept = default;

  size_t documents() const { return count_; }
  uint64_t stream_tokens() const { return stream_tokens_; }
  uint64_t start(size_t document) const;  // where document `document` begins; caller checks the bound
  const std::string& path() const { return file_.path(); }
  // dst[i] = the position of token start+i within its document, counted from `start` (a document that began
  // before the range counts from the range's first token): (start+i) − max(start, its document's start).
  // O(n + log documents). Throws RuntimeFailure naming the file when the range runs past the stream's end.
  void positions(size_t start, size_t n, int64_t* dst) const;

 private:
  DocumentIndex() = default;
  size_t document_of(uint64_t token) const;  // the last document beginning at or before `token`
  MappedFile file_;
  const unsigned char* starts_ = nullptr;  // inside file_'s mapping, which stays put when the object moves
  size_t count_ = 0;
  uint64_t stream_tokens_ = 0;
};

}  // namespace ssmax
