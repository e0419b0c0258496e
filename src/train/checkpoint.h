#pragma once
// The checkpoint: everything a continuation needs, in one torch archive.
//   model/…        weights and buffers
//   optimizer/…    AdamW moments and step counts (lr/betas are re-applied from the config on load)
//   meta           JSON string: CheckpointMeta below
//   rng_cpu        the CPU generator state (dropout); data order needs none (pure function of step)
// Written to a temp file in the same directory, fsync'ed and renamed: a crash never leaves a torn file.
#include <torch/torch.h>

#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/gpt.h"

namespace ssmax {

constexpr int kCheckpointVersion = 1;

struct CheckpointMeta {
  int format_version = kCheckpointVersion;
  int64_t step = 0;
  int64_t tokens = 0;
  double best_val_loss = std::numeric_limits<double>::infinity();
  double last_val_loss = std::numeric_limits<double>::quiet_NaN();
  double elapsed_s = 0;
  int64_t vocab_size = 0;
  nlohmann::json config;            // resolved config of the run
  std::string dataset_fingerprint;  // tokenizer + shards
  std::string dataset_dir;          // where the prepared dataset lives

  nlohmann::json to_json() const;
  static CheckpointMeta from_json(const nlohmann::json& j, const std::string& origin);
};

void save_checkpoint(const std::string& path, GPT& model, torch::optim::Optimizer& optimizer,
                     const CheckpointMeta& meta);

// Reads only the meta (to check shapes and configs before building a model).
// Throws RuntimeFailure naming the file when it is not a readable ssmax-gpt checkpoint.
CheckpointMeta read_checkpoint_meta(const std::string& path);

// Loads weights (and optimizer state and RNG, when an optimizer is given) into existing objects.
CheckpointMeta load_checkpoint(const std::string& path, GPT& model, torch::optim::Optimizer* optimizer);

// <run>/checkpoints/step_00001000.pt
std::string checkpoint_path(const std::string& run_dir, int64_t step);
// Checkpoint files of a run, oldest first.
std::vector<std::string> list_checkpoints(const std::string& run_dir);
// Deletes all but the newest `keep_last` checkpoints.
void prune_checkpoints(const std::string& run_dir, int keep_last);

}  // namespace ssmax
