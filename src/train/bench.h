#pragma once
// `bench`: training-step speed of a config on synthetic tokens, per normalizer, measured side by side.
// Torch-free header.
#include <string>
#include <vector>

#include "config/config.h"

namespace ssmax {

struct BenchResult {
  std::string normalizer;
  double median_step_s = 0;
  double tokens_per_s = 0;
  int64_t parameters = 0;
};

// Builds one model per normalizer (same seed) and times `steps` full training steps of each
// (forward, backward, clip, AdamW), interleaved round by round so drift in machine speed hits all
// alike; the first `warmup` rounds are not timed. Vocabulary: data.tokenizer.vocab_size.
std::vector<BenchResult> bench_normalizers(const Config& config, const std::vector<std::string>& normalizers,
                                           int steps, int warmup);

}  // namespace ssmax
