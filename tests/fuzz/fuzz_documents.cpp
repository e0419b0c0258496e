// The document index reader (data/document_index.h): header checks and the memory-mapped starts.
// Property: an index that opens starts at 0, rises strictly, ends inside the stream it names, and gives every token
// a position that restarts at each document start and otherwise counts up by one.
#include <algorithm>
#include <string>
#include <vector>

#include "data/document_index.h"
#include "fuzz_common.h"

using namespace ssmax;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes = fuzz::as_string(data, size);
  const std::string path = fuzz::write_scratch("documents.bin", bytes);
  // The stream length the caller passes: the one the header claims (so the deeper checks are reached), or 0.
  uint64_t tokens = 0;
  for (int i = 7; size >= 32 && i >= 0; --i) tokens = (tokens << 8) | data[24 + i];
  fuzz::expect_result_or_clear_error([&] {
    const DocumentIndex index = DocumentIndex::open(path, tokens);
    if (index.documents() > 0 && index.start(0) != 0)
      fuzz::finding("first start not 0", std::to_string(index.start(0)));
    for (size_t i = 1; i < index.documents(); ++i)
      if (index.start(i) <= index.start(i - 1)) fuzz::finding("starts not increasing", std::to_string(i));
    if (index.documents() > 0 && index.start(index.documents() - 1) >= tokens)
      fuzz::finding("a start past the stream", std::to_string(index.start(index.documents() - 1)));
    const size_t n = static_cast<size_t>(std::min<uint64_t>(tokens, 1 << 16));
    std::vector<int64_t> positions(n);
    index.positions(0, n, positions.data());
    for (size_t i = 0, next = 0; i < n; ++i) {
      const bool starts = next < index.documents() && index.start(next) == i;
      if (starts) ++next;
      const int64_t expected = starts || i == 0 ? 0 : positions[i - 1] + 1;
      if (positions[i] != expected) fuzz::finding("wrong position", std::to_string(i));
    }
  });
  return 0;
}
