#pragma once
// Text arriving in blocks, handed on as whole lines (without their '\n'). Only a line cut by a block boundary is
// copied, into one carry-over buffer.
#include <cstddef>
#include <string>
#include <string_view>

namespace ssmax {

class LineSplitter {
 public:
  template <typename OnLine>
  void add(std::string_view text, OnLine&& on_line) {
    size_t start = 0;
    for (size_t nl; (nl = text.find('\n', start)) != std::string_view::npos; start = nl + 1) {
      if (partial_.empty()) {
        on_line(text.substr(start, nl - start));
      } else {
        partial_.append(text.substr(start, nl - start));
        on_line(std::string_view(partial_));
        release();
      }
    }
    partial_.append(text.substr(start));
  }

  // The last line, when the text does not end with '\n'.
  template <typename OnLine>
  void finish(OnLine&& on_line) {
    if (!partial_.empty()) on_line(std::string_view(partial_));
    release();
  }

  std::string& unfinished() { return partial_; }  // the line so far

 private:
  // One huge line (a 50 MB JSON Lines record) would otherwise keep its buffer for the rest of the file.
  void release() {
    if (partial_.capacity() > (1u << 20)) {
      std::string().swap(partial_);
    } else {
      partial_.clear();
    }
  }

  std::string partial_;
};

// Where to cut text at `at` without splitting a UTF-8 character: `at` backed up over continuation bytes, or `at`
// itself when that would reach `lowest` (the text is not UTF-8 there). text[at] must exist.
inline size_t character_start(std::string_view text, size_t at, size_t lowest) {
  size_t cut = at;
  while (cut > lowest && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return cut == lowest ? at : cut;
}

}  // namespace ssmax
