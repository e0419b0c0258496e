#pragma once
// How the corpus is cut into pieces: the unit of the train/validation split and of parallel encoding.
//
// A piece is whole lines of one document (a plain text file, a JSON Lines record): it ends at the first line end
// at which it holds at least piece_bytes bytes, or where its document ends. Piece i (counting over the whole
// corpus) is validation text when i % period == period − 1, period = round(1 / val_fraction), so validation is
// spread over the whole corpus (all books, all authors), never splits a line and never joins two documents; when
// that leaves no validation piece, the last piece is one. Deterministic, and computable while streaming.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace ssmax {

constexpr size_t kMaxPieceBytes = 32 * 1024;  // big enough to keep context together

size_t split_period(double val_fraction);
bool is_validation_piece(uint64_t index, size_t period);
// A small corpus gets smaller pieces, about four periods' worth, so validation holds several pieces.
size_t piece_bytes_for(uint64_t corpus_bytes, double val_fraction);

class PieceCutter {
 public:
  // `document_end`: the piece is its document's last. A piece that ends exactly where the text so far ends is held
  // back until the next call says whether its document goes on, so that flag is always known when it is emitted
  // (pieces stay the same; an empty document emits nothing).
  using Emit = std::function<void(std::string_view piece, bool document_end)>;
  PieceCutter(size_t piece_bytes, Emit emit) : piece_bytes_(piece_bytes), emit_(std::move(emit)) {}
  // The corpus's text in order (a TextSink): pieces are emitted as soon as they are complete.
  void add(std::string_view text, bool document_end);

 private:
  size_t piece_bytes_;
  Emit emit_;
  std::string pending_;  // text not yet emitted, starting at a piece start
  size_t scanned_ = 0;   // pending_[0, scanned_) holds no usable line end
};

}  // namespace ssmax
