#include "data/recall_task.h"

#include <numeric>
#include <vector>

#include <fmt/format.h>

#include "util/errors.h"
#include "util/hash.h"

namespace ssmax {
namespace {

// As the text loader: each sequence's numbers are a pure function of its stream key, so batches do not depend on the
// standard library's distributions (which differ between implementations) or on any saved state.
uint64_t mix(uint64_t x) { return splitmix64(x); }

class Draws {
 public:
  explicit Draws(uint64_t key) : state_(key) {}
  // Uniform in [0, n) by Lemire's multiply-shift (bias below 2⁻⁴⁰ for the sizes here).
  int64_t below(int64_t n) {
    state_ = mix(state_);
    return static_cast<int64_t>((static_cast<unsigned __int128>(state_) * static_cast<uint64_t>(n)) >> 64);
  }

 private:
  uint64_t state_;
};

// Streams kept apart by a tag in the key: training, validation and evaluation never share a sequence pattern.
constexpr uint64_t kTrainStream = 0x6d71617274726eULL, kValidationStream = 0x6d7161727661ULL,
                   kEvaluationStream = 0x6d717172657661ULL;

}  // namespace

RecallTask::RecallTask(const DataConfig& data, int64_t block_size)
    : mode_(data.mqar.mode),
      keys_(data.mqar.keys),
      values_(data.mqar.values),
      queries_(data.mqar.queries),
      block_size_(block_size) {
  max_pairs_ = data.mqar.pairs > 0 ? data.mqar.pairs : pairs_for_length(block_size);
  min_pairs_ = data.mqar.min_pairs > 0 ? data.mqar.min_pairs : max_pairs_;
}

int64_t RecallTask::vocab_size() const { return pad_token() + 1; }

int64_t RecallTask::sequence_length(int64_t pairs) const { return (mode_ == "pair" ? 1 : 2) * pairs + queries_; }

int64_t RecallTask::pairs_for_length(int64_t length) const { return (length - queries_) / (mode_ == "pair" ? 1 : 2); }

std::string RecallTask::fingerprint() const {
  return fmt::format("mqar-v1 mode={} keys={} values={} pairs={}-{} queries={}", mode_, keys_, values_, min_pairs_,
                     max_pairs_, queries_);
}

int64_t RecallTask::pair_token(int64_t key, int64_t value) const {
  return mode_ == "pair" ? key * values_ + value : key;  // mode "token": the key's own token (its value follows)
}
int64_t RecallTask::query_token(int64_t key) const { return mode_ == "pair" ? keys_ * values_ + key : key; }
int64_t RecallTask::answer_token(int64_t value) const {
  return mode_ == "pair" ? keys_ * values_ + keys_ + value : keys_ + value;
}
int64_t RecallTask::pad_token() const { return answer_token(values_); }

RecallBatch RecallTask::train_batch(uint64_t seed, int64_t step, int64_t micro, int64_t batch) const {
  const uint64_t stream =
      mix(mix(mix(seed ^ kTrainStream) ^ static_cast<uint64_t>(step)) ^ static_cast<uint64_t>(micro));
  return make(stream, batch, block_size_, min_pairs_, max_pairs_);
}

RecallBatch RecallTask::validation_batch(uint64_t seed, int64_t index, int64_t batch) const {
  return make(mix(mix(seed ^ kValidationStream) ^ static_cast<uint64_t>(index)), batch, block_size_, min_pairs_,
              max_pairs_);
}

RecallBatch RecallTask::evaluation_batch(uint64_t seed, int64_t length, int64_t index, int64_t batch) const {
  const int64_t pairs = pairs_for_length(length);
  if (pairs < queries_ || pairs > keys_)
    throw UsageError(fmt::format(
        "length {}: a recall sequence of {} tokens holds {} pairs, but {} (data.mqar.queries = {}, data.mqar.keys = "
        "{}); evaluate lengths from {} to {} tokens",
        length, length, pairs, pairs < queries_ ? "needs at least one per query" : "there are only that many keys",
        queries_, keys_, sequence_length(queries_), sequence_length(keys_)));
  const uint64_t stream =
      mix(mix(mix(seed ^ kEvaluationStream) ^ static_cast<uint64_t>(length)) ^ static_cast<uint64_t>(index));
  return make(stream, batch, length, pairs, pairs);
}

RecallBatch RecallTask::make(uint64_t stream, int64_t batch, int64_t length, int64_t min_pairs,
                             int64_t max_pairs) const {
  auto inputs = torch::full({batch, length}, pad_token(), torch::kLong);
  auto targets = torch::full({batch, length}, -100, torch::kLong);
  auto answer_rows = torch::empty({batch * queries_}, torch::kLong), answers = torch::empty_like(answer_rows);
  auto query_positions = torch::empty({batch, queries_}, torch::kLong),
       pair_positions = torch::empty_like(query_positions);
  auto pairs = torch::empty({batch}, torch::kLong);
  int64_t* pair_count = pairs.data_ptr<int64_t>();
  int64_t *in = inputs.data_ptr<int64_t>(), *out = targets.data_ptr<int64_t>();
  int64_t *rows = answer_rows.data_ptr<int64_t>(), *answer = answers.data_ptr<int64_t>();
  int64_t *query_at = query_positions.data_ptr<int64_t>(), *pair_at = pair_positions.data_ptr<int64_t>();
  const int64_t width = mode_ == "pair" ? 1 : 2;
  std::vector<int64_t> key_order(keys_), value_of(keys_), pair_order;
  for (int64_t b = 0; b < batch; ++b) {
    Draws draw(mix(stream ^ static_cast<uint64_t>(b)));
    const int64_t P = min_pairs + draw.below(max_pairs - min_pairs + 1);
    pair_count[b] = P;
    // P distinct keys: the first P of a partial Fisher–Yates shuffle.
    std::iota(key_order.begin(), key_order.end(), 0);
    for (int64_t i = 0; i < P; ++i) std::swap(key_order[i], key_order[i + draw.below(keys_ - i)]);
    int64_t* row = in + b * length;
    for (int64_t i = 0; i < P; ++i) {
      const int64_t key = key_order[i], value = draw.below(values_);
      value_of[key] = value;
      if (mode_ == "pair") row[i] = pair_token(key, value);
      else row[2 * i] = key, row[2 * i + 1] = keys_ + value;
    }
    // Q distinct pairs asked again, in random order.
    pair_order.resize(P);
    std::iota(pair_order.begin(), pair_order.end(), 0);
    for (int64_t q = 0; q < queries_; ++q) {
      std::swap(pair_order[q], pair_order[q + draw.below(P - q)]);
      const int64_t pair = pair_order[q], key = key_order[pair], t = width * P + q;
      row[t] = query_token(key);
      out[b * length + t] = answer_token(value_of[key]);
      rows[b * queries_ + q] = b * length + t;
      answer[b * queries_ + q] = answer_token(value_of[key]);
      query_at[b * queries_ + q] = t;
      pair_at[b * queries_ + q] = width * pair;
    }
  }
  return {inputs, targets, answer_rows, answers, query_positions, pair_positions, pairs};
}

}  // namespace ssmax
