#pragma once
// Text arriving in blocks, handed on as whole lines (without their '\n'). Only a line cut by a block boundary is
// copied, into one carry-over buffer.
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
        partial_.clear();
      }
    }
    partial_.append(text.substr(start));
  }

  // The last line, when the text does not end with '\n'.
  template <typename OnLine>
  void finish(OnLine&& on_line) {
    if (!partial_.empty()) on_line(std::string_view(partial_));
    partial_.clear();
  }

  std::string& unfinished() { return partial_; }  // the line so far

 private:
  std::string partial_;
};

}  // namespace ssmax
