#include "data/corpus_split.h"

#include <algorithm>
#include <cmath>

namespace ssmax {

size_t split_period(double val_fraction) {
  return std::max<size_t>(2, static_cast<size_t>(std::lround(1.0 / val_fraction)));
}

bool is_validation_piece(uint64_t index, size_t period) { return index % period == period - 1; }

size_t piece_bytes_for(uint64_t corpus_bytes, double val_fraction) {
  return std::clamp<size_t>(corpus_bytes / (4 * split_period(val_fraction)), 1, kMaxPieceBytes);
}

void PieceCutter::add(std::string_view text, bool document_end) {
  pending_.append(text);
  size_t start = 0;  // of the current piece inside pending_
  for (;;) {
    if (pending_.size() - start < piece_bytes_) break;
    const size_t from = std::max(start + piece_bytes_ - 1, start + scanned_);
    const size_t nl = pending_.find('\n', from);
    if (nl == std::string::npos) {
      scanned_ = pending_.size() - start;
      break;
    }
    const bool last = nl + 1 == pending_.size();
    if (last && !document_end) {
      scanned_ = nl - start;  // found again, without a rescan, by the next call
      break;
    }
    emit_(std::string_view(pending_).substr(start, nl + 1 - start), last);
    start = nl + 1;
    scanned_ = 0;
  }
  if (document_end) {
    if (start < pending_.size()) emit_(std::string_view(pending_).substr(start), true);
    pending_.clear();
    scanned_ = 0;
    return;
  }
  pending_.erase(0, start);  // once per call, not once per piece
}

}  // namespace ssmax
