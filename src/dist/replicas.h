#pragma once
// The model replicas of a data-parallel run: every rank holds the same weights. They start from rank 0's, and
// since every rank applies the same all-reduced gradients with the same optimizer they must stay bit-identical.
// Both are no-ops for one process.
#include <torch/torch.h>

namespace ssmax {

// Copies rank 0's parameters into every rank's model.
void broadcast_parameters(torch::nn::Module& model);

// Compares an exact checksum of the parameters across ranks (their bit patterns summed as integers, so the order
// of summation cannot matter). Throws RuntimeFailure naming the ranks that differ from rank 0 at `step`.
// Test hook: SSMAX_TEST_PERTURB_RANK=R changes one weight on rank R first, so the check can be seen to fire.
void check_replicas_agree(torch::nn::Module& model, int64_t step);

}  // namespace ssmax
