#pragma once
// Where the heads look: the final query's attention weights in every layer and head, and how much of
// that attention lands on a needle.
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "model/gpt.h"

namespace ssmax {

// The last token's attention weights over all `ids.size()` keys: [n_layer, n_head, T] (float64, CPU).
// The prefix goes through the KV cache without capture, so only one row per head is ever materialised.
torch::Tensor last_query_attention(GPT& model, const std::vector<uint32_t>& ids, const torch::Device& device);

// Attention mass on keys [begin, end) per layer and head: [n_layer, n_head].
torch::Tensor attention_mass(const torch::Tensor& last_row_weights, size_t begin, size_t end);

}  // namespace ssmax
