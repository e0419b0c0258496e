#include "data/split_writer.h"

#include <cmath>

#include "data/corpus_split.h"

namespace ssmax {

SplitWriter::SplitWriter(const std::string& dir, uint32_t vocab, const DataConfig& data, int end_token)
    : period_(split_period(data.val_fraction)),
      end_token_(end_token),
      train_(dir, "train", kTrainDocuments, vocab, data.shard_tokens),
      val_(dir, "val", kValDocuments, vocab, data.shard_tokens),
      counts_(vocab, 0) {}

void SplitWriter::add(std::vector<uint32_t>&& tokens, bool document_end) {
  if (pieces_ > 0) commit(held_, held_ends_, pieces_ - 1, is_validation_piece(pieces_ - 1, period_));
  held_ = std::move(tokens);
  held_ends_ = document_end;
  ++pieces_;
}

void SplitWriter::finish() {
  if (pieces_ > 0)
    commit(held_, held_ends_, pieces_ - 1, is_validation_piece(pieces_ - 1, period_) || val_pieces_ == 0);
  train_names = train_.shards.finish();
  val_names = val_.shards.finish();
  train_.documents.finish(train_.shards.tokens());
  val_.documents.finish(val_.shards.tokens());
}

double SplitWriter::unigram_entropy() const {
  double h = 0;
  const double n = static_cast<double>(train_tokens());
  for (uint64_t c : counts_)
    if (c) h -= (c / n) * std::log(c / n);
  return h;
}

void SplitWriter::append(Split& split, const std::vector<uint32_t>& tokens) {
  if (tokens.empty()) return;
  if (split.new_document) split.documents.add(split.shards.tokens());
  split.new_document = false;
  split.shards.append(tokens);  // checks every id against the vocabulary first
  if (&split == &train_)
    for (uint32_t id : tokens) ++counts_[id];
}

void SplitWriter::commit(const std::vector<uint32_t>& tokens, bool document_end, uint64_t index, bool validation) {
  Split& split = validation ? val_ : train_;
  if (validation) ++val_pieces_;
  if (split.last_piece != UINT64_MAX && index != split.last_piece + 1) split.new_document = true;
  split.last_piece = index;
  append(split, tokens);
  if (!document_end) return;
  if (end_token_ >= 0) append(split, {static_cast<uint32_t>(end_token_)});
  split.new_document = true;
}

}  // namespace ssmax
