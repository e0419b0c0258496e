// Finetune task batches that need no model: the repeat task's copy structure.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <numeric>
#include <set>

#include "train/finetune_batches.h"
#include "util/errors.h"

namespace ssmax {
namespace {

TokenSource counting_text(size_t n) {
  std::vector<uint32_t> ids(n);
  std::iota(ids.begin(), ids.end(), 1u);
  return TokenSource::from_ids(std::move(ids), "counting");
}

TEST(FinetuneRepeatBatches, SecondHalfCopiesTheFirstAndIsTheOnlyAnswer) {
  const TokenSource text = counting_text(5000);
  for (int64_t length : {9, 10, 256}) {
    const FinetuneBatch batch = repeat_training_batch(text, {length}, 3, 7, 0, 0);
    ASSERT_EQ(batch.inputs.sizes(), (std::vector<int64_t>{3, length}));
    const int64_t half = length / 2 + 1;  // tokens per copy
    for (int64_t b = 0; b < 3; ++b) {
      const auto x = batch.inputs[b], answer = batch.answer_targets[b], prompt = batch.prompt_targets[b];
      // The first copy is consecutive text; the second repeats it half tokens later.
      EXPECT_TRUE(torch::equal(x.slice(0, 1, half) - x.slice(0, 0, half - 1), torch::ones({half - 1}, torch::kLong)));
      EXPECT_TRUE(torch::equal(x.slice(0, half, length), x.slice(0, 0, length - half)));
      // Targets: the next token; the prompt part predicts the first copy, the answer part the second.
      EXPECT_TRUE(torch::equal(prompt.slice(0, 0, half - 1), x.slice(0, 1, half)));
      EXPECT_EQ((prompt != -100).sum().item<int64_t>(), half - 1);
      EXPECT_EQ((answer != -100).sum().item<int64_t>(), length - half + 1);
      EXPECT_TRUE(torch::equal(answer.slice(0, half - 1, length - 1), x.slice(0, half, length)));
      EXPECT_EQ(answer[length - 1].item<int64_t>(), x[length - half].item<int64_t>());
    }
  }
}

TEST(FinetuneRepeatBatches, PlantedTokensSitInBothCopiesAtOneRandomPlace) {
  const TokenSource text = counting_text(5000);
  const PlantedTokens marker = [](uint64_t) { return std::vector<int64_t>{90001, 90002, 90003}; };
  const FinetuneBatch batch = repeat_training_batch(text, {64}, 8, 7, 0, 0, marker);
  const int64_t half = 33;
  std::set<int64_t> places;
  for (int64_t b = 0; b < 8; ++b) {
    const auto x = batch.inputs[b];
    EXPECT_TRUE(torch::equal(x.slice(0, half, 64), x.slice(0, 0, 64 - half)));
    const auto at = (x == 90001).nonzero().flatten();
    ASSERT_EQ(at.numel(), 2);  // once per copy
    EXPECT_EQ(at[1].item<int64_t>() - at[0].item<int64_t>(), half);
    const int64_t p = at[0].item<int64_t>();
    places.insert(p);
    EXPECT_EQ(x[p + 1].item<int64_t>(), 90002);
    EXPECT_EQ(x[p + 2].item<int64_t>(), 90003);
    // Around the plant, the first copy is still consecutive text (30 of its tokens).
    auto text_part = torch::cat({x.slice(0, 0, p), x.slice(0, p + 3, half)});
    EXPECT_EQ(text_part.numel(), half - 3);
    EXPECT_TRUE(torch::equal(text_part.slice(0, 1) - text_part.slice(0, 0, -1), torch::ones({half - 4}, torch::kLong)));
  }
  EXPECT_GT(places.size(), 1u);  // not always at the same place
  const PlantedTokens too_long = [](uint64_t) { return std::vector<int64_t>(40, 5); };
  EXPECT_THROW(repeat_training_batch(text, {64}, 1, 7, 0, 0, too_long), UsageError);
}

TEST(FinetuneRepeatBatches, BatchesArePureFunctionsOfSeedStreamAndStep) {
  const TokenSource text = counting_text(5000);
  const auto a = repeat_training_batch(text, {32, 64}, 4, 7, 3, 0);
  EXPECT_TRUE(torch::equal(a.inputs, repeat_training_batch(text, {32, 64}, 4, 7, 3, 0).inputs));
  EXPECT_EQ(a.length, 64);  // lengths are taken in turn by step
  EXPECT_FALSE(torch::equal(a.inputs, repeat_training_batch(text, {32, 64}, 4, 7, 3, 1).inputs));  // validation
  EXPECT_FALSE(torch::equal(a.inputs, repeat_training_batch(text, {32, 64}, 4, 8, 3, 0).inputs));  // seed
  EXPECT_THROW(repeat_training_batch(counting_text(20), {64}, 1, 7, 0, 0), RuntimeFailure);        // text too short
}

}  // namespace
}  // namespace ssmax
