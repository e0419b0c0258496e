#pragma once
// The checkpoint: everything a continuation needs, in one torch archive.
//   model/…        weights and buffers
//   optimizer/…    AdamW moments and step counts (lr/betas are re-applied from the config on load)
//   meta           JSON string: CheckpointMeta below
//   rng_cpu        the CPU generator state (dropout); data order needs none (pure function of step)
//   rng_cuda       the CUDA generator state, when the run trained on CUDA
// Tensors load onto the device of the model they are loaded into, so a checkpoint written on CUDA opens on a
// CPU-only machine and the other way round; weights and optimizer state are float32 whatever the precision.
// Crash safety: the archive is written to a temp file in the same directory, fsync'ed and renamed; then a
// manifest step_N.json (size + content hash + val loss) is written the same way, and last the pointer
// checkpoints/latest. A checkpoint without a manifest, or whose bytes do not match it, is not valid.
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
  double last_val_loss = std::numeric_limits<double>::quiet_NaN();  // latest evaluation
  double step_val_loss = std::numeric_limits<double>::quiet_NaN();  // evaluation at exactly this step
  double elapsed_s = 0;
  int64_t vocab_size = 0;
  nlohmann::json config;            // resolved config of the run
  std::string dataset_fingerprint;  // tokenizer + shards
  std::string dataset_dir;          // where the prepared dataset lives
  // Partial logging interval at the checkpoint, so a resumed run logs the same numbers as an unbroken one.
  double interval_loss = 0;
  int64_t interval_steps = 0;
  // Sizes of metrics.jsonl and train.log when the checkpoint was taken: a resume cuts off what an
  // interrupted run wrote after it, so every step appears once.
  uint64_t metrics_bytes = 0;
  uint64_t log_bytes = 0;
  // Processes that trained the run (torchrun's WORLD_SIZE): its global batch is batch × accum × world_size.
  int world_size = 1;

  nlohmann::json to_json() const;
  static CheckpointMeta from_json(const nlohmann::json& j, const std::string& origin);
};

void save_checkpoint(const std::string& path, GPT& model, torch::optim::Optimizer& optimizer,
                     const CheckpointMeta& meta);

// Reads only the meta (to check shapes and configs before building a model).
// Throws RuntimeFailure naming the file when it is not a readable ssmax-gpt checkpoint.
CheckpointMeta read_checkpoint_meta(const std::string& path);

// Loads weights (and optimizer state and RNG, when an optimizer is given) into existing objects.
// Every model tensor must be in the checkpoint with the same shape, except, when
// `new_normalizer_parameters` is set, SSMax s/b that the checkpoint lacks (a softmax run switched
// to SSMax): those keep their initial values and start with fresh optimizer state.
CheckpointMeta load_checkpoint(const std::string& path, GPT& model, torch::optim::AdamW* optimizer,
                               bool new_normalizer_parameters = false);

// <run>/checkpoints/step_00001000.pt
std::string checkpoint_path(const std::string& run_dir, int64_t step);

struct CheckpointEntry {
  std::string path;
  int64_t step = 0;
  double val_loss = std::numeric_limits<double>::quiet_NaN();  // at that step, if evaluated
};
// Checkpoints of a run that have a manifest, oldest first (contents not verified: see verify_checkpoint).
std::vector<CheckpointEntry> list_checkpoints(const std::string& run_dir);

// Throws RuntimeFailure naming the file when its manifest is missing or its size/hash differ.
void verify_checkpoint(const std::string& path);

// The newest checkpoint that verifies; warns about newer ones that do not. Throws RuntimeFailure
// when the run has no valid checkpoint.
std::string find_resume_checkpoint(const std::string& run_dir);

// A checkpoint named on the command line: a file (verified, no fallback) or a run directory (its newest
// valid checkpoint). Throws UsageError when it is neither.
std::string resolve_checkpoint(const std::string& file_or_run_dir);

// Keeps the newest `keep_last` checkpoints plus the one with the best validation loss; deletes the rest
// and any leftovers of interrupted writes.
void prune_checkpoints(const std::string& run_dir, int keep_last);

}  // namespace ssmax
