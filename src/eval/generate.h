#pragma once
// Autoregressive decoding with the KV cache: the prompt is processed once, then one token per step.
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "model/gpt.h"

namespace ssmax {

struct SamplingOptions {
  int64_t max_new_tokens = 100;
  double temperature = 0.8;  // <= 0: greedy (argmax)
  int64_t top_k = 50;        // <= 0 or >= vocab: sample from the whole distribution
  uint64_t seed = 1;
  bool use_cache = true;    // false: a full forward over all tokens each step (the reference path)
  int64_t stop_token = -1;  // generation ends after this token (the dataset's end-of-document token); -1: none
};

struct Generation {
  std::vector<int64_t> tokens;           // the new tokens only
  bool stopped_at_block_size = false;    // learned positions ran out before max_new_tokens
  bool stopped_at_document_end = false;  // the model ended the document (SamplingOptions::stop_token)
};

// Called after each new token with every token generated so far.
using TokenCallback = std::function<void(const std::vector<int64_t>&)>;

// Throws UsageError for an empty prompt, or one longer than block_size on a learned-position model.
Generation generate_tokens(GPT& model, const std::vector<int64_t>& prompt, const SamplingOptions& options,
                           const torch::Device& device, const TokenCallback& on_token = {});

// The next token from a row of logits [vocab]: argmax when temperature <= 0, else top-k sampling.
int64_t sample_token(const torch::Tensor& logits, double temperature, int64_t top_k, uint64_t& rng_state);

}  // namespace ssmax
