#pragma once
// Multi-query associative recall (MQAR; Arora et al., "Zoology", 2023): a synthetic long-context task generated from
// the seed, where attention must find one key among many — the place the paper's claim about SSMax shows.
//
// A sequence lists P key–value pairs (P distinct keys out of K, each with a value out of V), then asks Q of its keys
// again; the model must answer each query with its key's value. The loss is taken on the answers only.
//   mode "pair":  one position holds one pair: [pair(k₁,v₁) … pair(k_P,v_P)] [query(k_q1) … query(k_qQ)]
//                 (a model without position encoding can solve it in one hop: the query matches its pair's token)
//   mode "token": keys and values are tokens of their own: [k₁ v₁ … k_P v_P] [k_q1 … k_qQ] (the usual MQAR; it needs
//                 an induction step, so positions matter)
// The answer to a query is predicted at the query's own position. With min_pairs < pairs, each training sequence
// draws its P from [min_pairs, pairs] and ends in padding (no loss), so the queries meet many context lengths.
//
// Sequences are a pure function of (seed, stream, index): training batches of (step, micro-step) as the text loader's
// are, fixed validation batches, and evaluation batches at any length — no prepare, no files, exact resume.
#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "config/config.h"

namespace ssmax {

struct RecallBatch {
  torch::Tensor inputs;   // [B, L] int64 token ids
  torch::Tensor targets;  // [B, L] int64: the answer at each query position, -100 elsewhere
  // [B·Q] int64 flat indices b·L + t of the query positions, and each query's answer: the rows the loss is taken on
  torch::Tensor answer_rows, answers;
  // [B, Q] int64: where each query sits, and where the pair it asks for sits (mode "token": that pair's key token;
  // its value follows it) — what the attention on the right pair is measured at
  torch::Tensor query_positions, pair_positions;
  torch::Tensor pairs;  // [B] int64: the sequence's number of pairs
};

class RecallTask {
 public:
  // Resolves data.mqar against model.block_size (pairs 0: as many as the block holds after the queries; min_pairs 0:
  // pairs). The config's checks (config.cpp) have already refused impossible sizes.
  RecallTask(const DataConfig& data, int64_t block_size);

  const std::string& mode() const { return mode_; }
  int64_t keys() const { return keys_; }
  int64_t values() const { return values_; }
  int64_t queries() const { return queries_; }
  int64_t min_pairs() const { return min_pairs_; }
  int64_t max_pairs() const { return max_pairs_; }
  int64_t vocab_size() const;
  // Tokens a sequence of `pairs` pairs and its queries takes.
  int64_t sequence_length(int64_t pairs) const;
  // The most pairs a sequence of `length` tokens holds (with its queries); may exceed keys() (then it cannot be made).
  int64_t pairs_for_length(int64_t length) const;
  // One line naming every size: checkpoints record it as their dataset's fingerprint, so a resume with other sizes
  // is refused as a change of data.
  std::string fingerprint() const;

  // Micro-batch `micro` of step `step`: `batch` sequences of block_size tokens (pairs drawn from the training range).
  RecallBatch train_batch(uint64_t seed, int64_t step, int64_t micro, int64_t batch) const;
  // Batch `index` of the fixed validation set: the training distribution, another stream.
  RecallBatch validation_batch(uint64_t seed, int64_t index, int64_t batch) const;
  // Batch `index` of an evaluation at `length` tokens: every sequence holds pairs_for_length(length) pairs.
  // Throws UsageError when that is more than there are keys.
  RecallBatch evaluation_batch(uint64_t seed, int64_t length, int64_t index, int64_t batch) const;

  // Token ids (public for the tests and the report's examples).
  int64_t pair_token(int64_t key, int64_t value) const;
  int64_t query_token(int64_t key) const;
  int64_t answer_token(int64_t value) const;
  int64_t pad_token() const;

 private:
  RecallBatch make(uint64_t stream, int64_t batch, int64_t length, int64_t min_pairs, int64_t max_pairs) const;
  std::string mode_;
  int64_t keys_, values_, queries_, min_pairs_, max_pairs_, block_size_;
};

}  // namespace ssmax
