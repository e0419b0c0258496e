#pragma once
// Needle finetuning data: prompts from build_needle_prompt() followed by the answer " <7 digits>.",
// with the loss on the answer tokens only.
#include <torch/torch.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "data/tokenizer.h"
#include "eval/token_source.h"

namespace ssmax {

// Batch `step` of stream `stream` (0 = training, 1 = the fixed validation set): inputs [B, T] and targets
// [B, T] that are -100 (ignored by cross_entropy) everywhere except where the next token is an answer token.
// Prompt length cycles through `lengths` by step; depth, word, number and haystack start are a pure
// function of (seed, stream, step, index), so a resumed run sees the same examples.
std::pair<torch::Tensor, torch::Tensor> needle_training_batch(const Tokenizer& tokenizer, const TokenSource& haystack,
                                                              const std::vector<int64_t>& lengths, int64_t batch_size,
                                                              uint64_t seed, int64_t step, uint64_t stream);

}  // namespace ssmax
