#pragma once
// Finetuning data. Each task builds batches whose targets split into the tokens the task is scored on
// ("answer") and the rest of the sequence ("prompt", whose language-model loss --lm-weight adds):
//   needle  build_needle_prompt() followed by the answer " <7 digits>."; the answer is the 9 answer tokens.
//   repeat  a window of the training text (holding a random 7-digit number) followed by the same window
//           again; the answer is the second copy, which only a model that looks back (an induction head)
//           can predict well.
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "data/token_source.h"
#include "data/tokenizer.h"

namespace ssmax {

struct FinetuneBatch {
  torch::Tensor inputs;          // [B, T] token ids, padded at the end
  torch::Tensor answer_targets;  // [B, T] the next token where it is an answer token, else -100 (ignored)
  torch::Tensor prompt_targets;  // [B, T] the next token where it is still part of the prompt, else -100
  int64_t length = 0;            // the prompt length (needle) or sequence length (repeat) of this batch
};

// Batch `step` of stream `stream` (0 = training, 1 = the fixed validation set). The length cycles
// through `lengths` by step; everything else (depth, word, number, where the text starts) is a pure
// function of (seed, stream, step, index), so a resumed run sees the same examples.
FinetuneBatch needle_training_batch(const Tokenizer& tokenizer, const TokenSource& haystack,
                                    const std::vector<int64_t>& lengths, int64_t batch_size, uint64_t seed,
                                    int64_t step, uint64_t stream);

// Tokens to plant at a random place in the first copy of a repeat row, from a per-row random key.
using PlantedTokens = std::function<std::vector<int64_t>(uint64_t key)>;

// Rows of `length` input tokens: h = floor(length/2) + 1 tokens (a window of `text` with `planted(key)`
// inserted at a random place, if given), then the same h tokens again (the surplus cut off), so that every
// target from position h-1 on is a copy of the token h positions back.
FinetuneBatch repeat_training_batch(const TokenSource& text, const std::vector<int64_t>& lengths, int64_t batch_size,
                                    uint64_t seed, int64_t step, uint64_t stream, const PlantedTokens& planted = {});

// " <7 random digits>" as the tokenizer encodes it: planted into repeat rows so that the model learns to tell
// digits apart and copy them (a corpus without digits, like the KJV, leaves their embeddings nearly equal).
PlantedTokens random_number_tokens(const Tokenizer& tokenizer);

}  // namespace ssmax
