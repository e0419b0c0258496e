#include "data/corpus_split.h"

#include <algorithm>
#include <cmath>

#include "data/line_splitter.h"

namespace ssmax {

size_t split_period(double val_fraction) {
  return std::max<size_t>(2, static_cast<size_t>(std::lround(1.0 / val_fraction)));
}

bool is_validation_piece(uint64_t index, size_t period) { return index % period == period - 1; }

size_t piece_bytes_for(uint64_t corpus_bytes, double val_fraction) {
  return std::clamp<size_t>(corpus_bytes / (4 * split_period(val_fraction)), 1, kMaxPieceBytes);
}

PieceCutter::PieceCutter(size_t piece_bytes, Emit emit, size_t piece_limit)
    : piece_bytes_(piece_bytes), piece_limit_(std::max(piece_limit, 2 * piece_bytes)), emit_(std::move(emit)) {}

void PieceCutter::add(std::string_view text, bool document_end) {
  do {
    const size_t n = std::min(text.size(), piece_limit_);
    pending_.append(text.data(), n);
    text.remove_prefix(n);
    cut(document_end && text.empty());
  } while (!text.empty());
}

// pending_ holds more than piece_limit_ bytes from `start` and no line end in them that could end the piece.
size_t PieceCutter::end_of_long_line(size_t start) const {
  const size_t limit = start + piece_limit_;
  const size_t space = pending_.find(' ', start + piece_bytes_);
  if (space < limit) return space;
  return character_start(pending_, limit, start + piece_bytes_);
}

void PieceCutter::cut(bool document_end) {
  size_t start = 0;  // of the current piece inside pending_
  for (;;) {
    const size_t available = pending_.size() - start;
    if (available < piece_bytes_) break;
    const size_t from = std::max(start + piece_bytes_ - 1, start + scanned_);
    const size_t within = std::min(pending_.size(), start + piece_limit_);
    size_t nl = from < within ? pending_.find('\n', from) : std::string::npos;
    if (nl >= within) nl = std::string::npos;
    size_t end;
    if (nl != std::string::npos) {
      end = nl + 1;
    } else if (available > piece_limit_) {
      end = end_of_long_line(start);
    } else {
      scanned_ = available;  // no line end yet: wait for more text, or for the document's end
      break;
    }
    const bool last = end == pending_.size();
    if (last && !document_end) {
      scanned_ = end - 1 - start;  // found again, without a rescan, by the next call
      break;
    }
    emit_(std::string_view(pending_).substr(start, end - start), last);
    start = end;
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
