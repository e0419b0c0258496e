#pragma once
// How the corpus is cut into pieces: the unit of the train/validation split and of parallel encoding.
//
// A piece is whole lines of one document (a plain text file, a JSON Lines record): it ends at the first line end
// at which it holds at least piece_bytes bytes, or where its document ends. A line so long that the piece would
// pass piece_limit bytes is cut instead: before its first space at or after piece_bytes, or, with none there, at
// piece_limit backed up to the start of a UTF-8 character. sentencepiece's time and memory grow faster than the
// text it encodes at once (~80 bytes of memory per byte; one 50 MB line took 4.4 GB and 112 s of CPU), and
// the pieces are what it encodes. A cut before a space leaves the tokens as they were: the tokenizers prepare
// trains never put a space anywhere but at the start of a token.
// Piece i (counting over the whole corpus) is validation text when i % period == period − 1, period =
// round(1 / val_fraction), so validation is spread over the whole corpus (all books, all authors), splits no line
// shorter than piece_limit and never joins two documents; when that leaves no validation piece, the last piece is
// one. Deterministic, and computable while streaming.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace ssmax {

constexpr size_t kMaxPieceBytes = 32 * 1024;        // big enough to keep context together
constexpr size_t kPieceLimit = 4 * kMaxPieceBytes;  // far above a line of prose, small for sentencepiece

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
  // `piece_limit` is kPieceLimit but in tests; it is raised to 2 × piece_bytes when below.
  PieceCutter(size_t piece_bytes, Emit emit, size_t piece_limit = kPieceLimit);
  // The corpus's text in order (a TextSink): pieces are emitted as soon as they are complete. Holds less than
  // 2 × piece_limit bytes, however much text one call brings (a JSON Lines record comes whole).
  void add(std::string_view text, bool document_end);

 private:
  void cut(bool document_end);
  size_t end_of_long_line(size_t start) const;

  size_t piece_bytes_, piece_limit_;
  Emit emit_;
  std::string pending_;  // text not yet emitted, starting at a piece start
  size_t scanned_ = 0;   // pending_[0, scanned_) holds no usable line end
};

}  // namespace ssmax
