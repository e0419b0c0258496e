#pragma once
// The text a tokenizer is trained on: a deterministic sample of the corpus's lines of bounded size, so that
// tokenizer training costs the same memory and time for 10 MB and for 10 GB of text.
//
// Every line gets a pseudo-random priority from its index in the corpus; the lines of lowest priority that fit the
// budget are kept (bottom-k sampling: one pass, each line equally likely, memory bounded by the budget). A corpus
// that fits is kept whole and in order, so small corpora train exactly as they always did. Lines longer than
// kMaxSampleLine bytes are cut at a UTF-8 character boundary (sentencepiece skips longer sentences), and one line
// gives at most a tenth of the budget (its start): a record of 50 MB without a newline would otherwise be up to all
// of the sample and of the trainer's time and memory. A tenth, not less: a corpus that is one long line (a book
// without line breaks) still gets a sample a tokenizer can learn from. The bound is per line, not per document: a
// plain text file is one document, and the sample of ordinary corpora stays what it was.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "data/line_splitter.h"

namespace ssmax {

constexpr size_t kMaxSampleLine = 16384;  // sentencepiece's max_sentence_length as we set it
constexpr uint64_t kLineShare = 10;       // one line gives at most budget / kLineShare

class LineSample {
 public:
  explicit LineSample(uint64_t budget_bytes);
  // The corpus's text in order; lines may span calls. Holds no more of a line than the sentences it gives.
  void add(std::string_view text);
  // Ends the last line (a corpus not ending in a newline).
  void finish();
  // Writes the kept lines in corpus order, each ending in '\n'. Throws RuntimeFailure naming the file.
  void write(const std::string& path) const;

  uint64_t lines_seen() const { return index_; }
  uint64_t lines_kept() const { return kept_.size(); }
  uint64_t bytes_kept() const { return text_bytes_; }
  uint64_t bytes_left_out() const { return left_out_; }  // of lines past the bound per line
  bool whole() const { return evicted_ == 0 && left_out_ == 0; }
  size_t max_line_pieces() const { return max_line_pieces_; }  // sentences one line gives at most

 private:
  struct Line {
    uint64_t priority, index;
    std::string text;
    bool operator<(const Line& other) const { return priority < other.priority; }
  };
  void take(std::string_view line);
  void take_pieces(std::string& line);
  void offer(std::string_view line);

  uint64_t budget_;
  size_t max_line_pieces_;
  std::vector<Line> kept_;  // a max-heap on priority (std::push_heap): the top is the first to go when over budget
  LineSplitter lines_;
  uint64_t index_ = 0, cost_ = 0, text_bytes_ = 0, evicted_ = 0, left_out_ = 0;
  size_t line_pieces_ = 0;  // sentences offered from the line being read
};

}  // namespace ssmax
