#pragma once
// The text a tokenizer is trained on: a deterministic sample of the corpus's lines of bounded size, so that
// tokenizer training costs the same memory and time for 10 MB and for 10 GB of text.
//
// Every line gets a pseudo-random priority from its index in the corpus; the lines of lowest priority that fit the
// budget are kept (bottom-k sampling: one pass, each line equally likely, memory bounded by the budget). A corpus
// that fits is kept whole and in order, so small corpora train exactly as they always did. Lines longer than
// kMaxSampleLine bytes are cut at a UTF-8 character boundary (sentencepiece skips longer sentences).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "data/line_splitter.h"

namespace ssmax {

constexpr size_t kMaxSampleLine = 16384;  // sentencepiece's max_sentence_length as we set it

class LineSample {
 public:
  explicit LineSample(uint64_t budget_bytes) : budget_(budget_bytes) {}
  // The corpus's text in order; lines may span calls.
  void add(std::string_view text);
  // Ends the last line (a corpus not ending in a newline).
  void finish();
  // Writes the kept lines in corpus order, each ending in '\n'. Throws RuntimeFailure naming the file.
  void write(const std::string& path) const;

  uint64_t lines_seen() const { return index_; }
  uint64_t lines_kept() const { return kept_.size(); }
  uint64_t bytes_kept() const { return text_bytes_; }
  bool whole() const { return evicted_ == 0; }

 private:
  struct Line {
    uint64_t priority, index;
    std::string text;
    bool operator<(const Line& other) const { return priority < other.priority; }
  };
  void take(std::string_view line);
  void offer(std::string_view line);

  uint64_t budget_;
  std::vector<Line> kept_;  // a max-heap on priority (std::push_heap): the top is the first to go when over budget
  LineSplitter lines_;
  uint64_t index_ = 0, cost_ = 0, text_bytes_ = 0, evicted_ = 0;
};

}  // namespace ssmax
