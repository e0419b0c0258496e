#pragma once
// `train`: the training loop from a resolved config to a run directory. Torch-free header so the
// command-line layer stays cheap to compile.
#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"

namespace ssmax {

struct TrainSummary {
  std::string run_dir;
  int64_t steps = 0;
  double final_train_loss = 0;
  double final_val_loss = 0;
  double best_val_loss = 0;
  double tokens_per_s = 0;       // mean over the run's training time
  double unigram_entropy = 0;    // of the train split, nats: the loss of a model with no context
  bool already_complete = false; // the run directory held a finished run; nothing was trained
};

TrainSummary train(const Config& config);

}  // namespace ssmax
