#pragma once
// Where prepare's encoded pieces go: the train or the validation split (corpus_split.h's rule), each a stream of
// token shards plus, since dataset format 4, the index of where its documents begin (document_index.h).
//
// After a document's last piece the tokenizer's end-of-document id (when it has one) is appended to that piece's
// split: it is the document's last token, the one its last text token learns to predict. A document begins in a
// split's stream at its start, after a piece that ended its document, and wherever two consecutive pieces of the
// split are not consecutive in the corpus (the piece between went to the other split): the text is not contiguous
// there, so nothing may join the two sides. An empty document (no tokens) begins nowhere.
#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"
#include "data/document_index.h"
#include "data/token_stream.h"

namespace ssmax {

constexpr const char* kTrainDocuments = "train-documents.bin";
constexpr const char* kValDocuments = "val-documents.bin";

class SplitWriter {
 public:
  // `end_token`: the id appended after each document, or -1 for none (the index alone marks the boundaries).
  SplitWriter(const std::string& dir, uint32_t vocab, const DataConfig& data, int end_token);

  // Pieces in corpus order. The newest is held back until the next one arrives, so that a corpus whose period gives
  // no validation piece can give it its last piece.
  void add(std::vector<uint32_t>&& tokens, bool document_end);
  void finish();  // writes the last shards and both indexes

  double unigram_entropy() const;
  uint64_t pieces() const { return pieces_; }
  uint64_t val_pieces() const { return val_pieces_; }
  uint64_t train_tokens() const { return train_.shards.tokens(); }
  uint64_t val_tokens() const { return val_.shards.tokens(); }
  uint64_t train_documents() const { return train_.documents.documents(); }
  uint64_t val_documents() const { return val_.documents.documents(); }
  std::vector<std::string> train_names, val_names;  // shard file names, in order

 private:
  struct Split {
    Split(const std::string& dir, const char* prefix, const char* index, uint32_t vocab, uint64_t shard_tokens)
        : shards(dir, prefix, vocab, shard_tokens), documents(dir + "/" + index) {}
    ShardedWriter shards;
    DocumentIndexWriter documents;
    uint64_t last_piece = UINT64_MAX;  // corpus index of the split's newest piece
    bool new_document = true;          // its next token begins a document
  };
  void commit(const std::vector<uint32_t>& tokens, bool document_end, uint64_t index, bool validation);
  void append(Split& split, const std::vector<uint32_t>& tokens);

  size_t period_;
  int end_token_;
  Split train_, val_;
  std::vector<uint64_t> counts_;
  std::vector<uint32_t> held_;
  bool held_ends_ = false;
  uint64_t pieces_ = 0, val_pieces_ = 0;
};

}  // namespace ssmax
