// Batches of the finetune tasks (see finetune.h).
#include <algorithm>

#include "data/needle_prompt.h"
#include "train/finetune_batches.h"
#include "util/errors.h"

namespace ssmax {
namespace {

uint64_t mix(uint64_t x) {  // splitmix64
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t example_key(uint64_t seed, uint64_t stream, int64_t step, int64_t index) {
  return mix(mix(mix(seed ^ stream) ^ static_cast<uint64_t>(step)) ^ static_cast<uint64_t>(index));
}

// Rows → inputs (each row but its last token) and targets (the next token), split at prompt_sizes[b]:
// targets of positions whose next token lies at or after it are answer targets, the others prompt targets.
FinetuneBatch make_batch(const std::vector<std::vector<int64_t>>& rows, const std::vector<size_t>& prompt_sizes,
                         int64_t length) {
  size_t longest = 0;
  for (const auto& row : rows) longest = std::max(longest, row.size());
  const auto batch_size = static_cast<int64_t>(rows.size());
  const int64_t T = static_cast<int64_t>(longest) - 1;
  auto x = torch::zeros({batch_size, T}, torch::kLong);
  auto answer = torch::full({batch_size, T}, -100, torch::kLong);
  auto prompt = torch::full({batch_size, T}, -100, torch::kLong);
  auto xs = x.accessor<int64_t, 2>();
  auto as = answer.accessor<int64_t, 2>();
  auto ps = prompt.accessor<int64_t, 2>();
  for (int64_t b = 0; b < batch_size; ++b) {
    const auto& row = rows[b];
    for (size_t t = 0; t + 1 < row.size(); ++t) {
      xs[b][t] = row[t];
      (t + 1 >= prompt_sizes[b] ? as : ps)[b][t] = row[t + 1];
    }
  }
  return {x, answer, prompt, length};
}

}  // namespace

FinetuneBatch needle_training_batch(const Tokenizer& tokenizer, const TokenSource& haystack,
                                    const std::vector<int64_t>& lengths, int64_t batch_size, uint64_t seed,
                                    int64_t step, uint64_t stream) {
  const int64_t length = lengths[static_cast<size_t>(step) % lengths.size()];
  std::vector<std::vector<int64_t>> rows;
  std::vector<size_t> prompt_sizes;
  for (int64_t b = 0; b < batch_size; ++b) {
    const uint64_t key = example_key(seed, stream, step, b);
    const double depth = static_cast<double>(key % 1001) / 1000.0;
    const NeedlePrompt p = build_needle_prompt(tokenizer, haystack, length, depth, key);
    std::vector<int64_t> row(p.ids.begin(), p.ids.end());
    for (uint32_t id : tokenizer.encode(" " + p.number + ".")) row.push_back(id);
    prompt_sizes.push_back(p.ids.size());
    rows.push_back(std::move(row));
  }
  // Answers may tokenize to different lengths: rows are padded at the end, and padded targets ignored.
  return make_batch(rows, prompt_sizes, length);
}

PlantedTokens random_number_tokens(const Tokenizer& tokenizer) {
  return [&tokenizer](uint64_t key) {
    std::string number = " " + std::to_string(1 + key % 9);
    for (int i = 0; i < 6; ++i) number += static_cast<char>('0' + (key = mix(key)) % 10);
    const auto ids = tokenizer.encode(number);
    return std::vector<int64_t>(ids.begin(), ids.end());
  };
}

FinetuneBatch repeat_training_batch(const TokenSource& text, const std::vector<int64_t>& lengths, int64_t batch_size,
                                    uint64_t seed, int64_t step, uint64_t stream, const PlantedTokens& planted) {
  const int64_t length = lengths[static_cast<size_t>(step) % lengths.size()];
  const auto half = static_cast<size_t>(length / 2 + 1);  // two copies hold length + 1 tokens (inputs + last target)
  std::vector<std::vector<int64_t>> rows;
  for (int64_t b = 0; b < batch_size; ++b) {
    const uint64_t key = example_key(seed, stream, step, b);
    const std::vector<int64_t> plant = planted ? planted(mix(key)) : std::vector<int64_t>{};
    if (plant.size() >= half)
      throw UsageError("--lengths " + std::to_string(length) + ": too short for the repeat task (each copy holds " +
                       std::to_string(half) + " tokens, the planted number " + std::to_string(plant.size()) + ")");
    const size_t from_text = half - plant.size();
    if (text.size() < from_text)
      throw RuntimeFailure(text.name() + ": " + std::to_string(text.size()) + " tokens, fewer than the " +
                           std::to_string(from_text) + " one copy of a " + std::to_string(length) +
                           "-token sequence needs");
    std::vector<int64_t> copy(from_text);
    text.copy_to(key % (text.size() - from_text + 1), from_text, copy.data());
    const auto at = static_cast<std::ptrdiff_t>(mix(key ^ 1) % (from_text + 1));
    copy.insert(copy.begin() + at, plant.begin(), plant.end());
    std::vector<int64_t> row = copy;
    row.insert(row.end(), copy.begin(), copy.end());
    row.resize(static_cast<size_t>(length) + 1);
    rows.push_back(std::move(row));
  }
  return make_batch(rows, std::vector<size_t>(rows.size(), half), length);
}

}  // namespace ssmax
