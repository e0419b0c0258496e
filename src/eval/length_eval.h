#pragma once
// Loss by position at several context lengths: how a model generalises beyond its training length.
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "eval/eval_model.h"

namespace ssmax {

// Per-position cross-entropy over `windows` non-overlapping windows of length+1 tokens.
// Position p (1-based) is the prediction of a token from the p tokens before it: its first p tokens for a window,
// and for a model trained with document masking on a source that knows its documents, the p tokens of its own
// document inside the window (the context it really has; later positions then hold fewer tokens).
struct PositionLoss {
  int64_t length = 0;
  int64_t windows = 0;
  std::vector<double> sum;        // [length]: summed loss at each position
  std::vector<int64_t> count;     // [length]: predictions at each position (windows, without documents)
  bool within_documents = false;  // positions count from each token's document start (see above)
  double overall() const;         // token-weighted mean over every position
  double at(int64_t position) const { return sum[position - 1] / static_cast<double>(count[position - 1]); }
};

// Positions [lo, hi) (1-based), bins of doubling width: [1,2), [2,4), [4,8), …, the last cut at length+1.
struct LossBin {
  int64_t lo = 0, hi = 0;
  int64_t tokens = 0;  // predictions in the bin
  double loss = 0;     // token-weighted mean
};
std::vector<LossBin> log_bins(const PositionLoss& losses);

// Windows are spread evenly over the non-overlapping slots of the source; fewer are used (with a note) when
// the source is short. Throws RuntimeFailure when it holds no window of length+1 tokens.
using ProgressCallback = std::function<void(int64_t done, int64_t total)>;
PositionLoss position_losses(GPT& model, const TokenSource& source, int64_t length, int64_t windows,
                             const torch::Device& device, const ProgressCallback& progress = {});

}  // namespace ssmax
