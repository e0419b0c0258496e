#pragma once
// `train`: the training loop from a resolved config to a run directory, and its exact continuation.
// Torch-free header so the command-line layer stays cheap to compile.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "config/config.h"

namespace ssmax {

class GPT;  // model/gpt.h

// A new run's model started from elsewhere than its seeded initialisation: the command line wires `train
// --init-from` to the Hugging Face import here (export/hf_import_config.h), so train/ never includes the export room.
// `check` runs before the run directory or the data exist; `load` fills the model once it is built.
struct ModelInitializer {
  std::function<void(const Config&)> check;
  std::function<void(const Config&, GPT&)> load;
  std::string source;  // for the log: "the Hugging Face checkpoint in DIR"
};

struct TrainOptions {
  int64_t stop_at = 0;           // > 0: stop after this step with a checkpoint (the schedule still targets max_steps)
  ModelInitializer initializer;  // needed when config.init_from is set
};

struct TrainSummary {
  std::string run_dir;
  int64_t steps = 0;
  double final_train_loss = 0;
  double final_val_loss = 0;
  double best_val_loss = 0;
  double tokens_per_s = 0;        // mean over the run's training time
  double unigram_entropy = 0;     // of the train split, nats: the loss of a model with no context
  bool already_complete = false;  // the run directory held a finished run; nothing was trained
  bool interrupted = false;       // stopped early by a signal or stop_at, with a checkpoint
  std::string last_checkpoint;
};

// A new run in config.out_dir.
TrainSummary train(const Config& config, const TrainOptions& options = {});

// Continues the run in `run_dir_or_checkpoint` (a run directory: its newest valid checkpoint, falling
// back to older ones with a warning; or one checkpoint file). `overrides` may change only the keys the schema marks
// changeable on resume (config_keys_changeable_on_resume), or switch the normalizer as normalizer_switch_allowed()
// permits (paper variant (f)) together with its own keys.
TrainSummary resume(const std::string& run_dir_or_checkpoint, const std::vector<std::string>& overrides,
                    const TrainOptions& options = {});

}  // namespace ssmax
