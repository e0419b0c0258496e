#pragma once
// The checkpoint file: one torch archive holding the keys of every CheckpointPart (checkpoint_state.h), published
// durably (a temporary file, fsync, rename: util/files.h) and then recorded in the run's catalog — a manifest
// step_N.json (size, content hash, val loss) and the pointer checkpoints/latest (checkpoint_catalog.h). A
// checkpoint without a manifest, or whose bytes do not match it, is not valid.
#include <torch/torch.h>

#include <string>
#include <vector>

#include "run/checkpoint_catalog.h"
#include "train/checkpoint_state.h"

namespace ssmax {

// Writes `parts` into `path` and records it; `meta` gives the manifest its step and val loss.
void write_checkpoint_file(const std::string& path, const std::vector<CheckpointPart*>& parts,
                           const CheckpointMeta& meta);

// Restores `parts` from `path`, tensors mapped onto `device`. Throws RuntimeFailure naming the file when it is
// not a readable ssmax-gpt checkpoint or does not fit the parts.
void read_checkpoint_file(const std::string& path, const std::vector<CheckpointPart*>& parts,
                          const torch::Device& device);

// A checkpoint named on the command line (a file or a run directory), opened for reading: the verified file and
// its run directory (resolve_checkpoint), its meta and the config it was trained with. What `train --resume`,
// `finetune` and every evaluation command start from.
struct CheckpointInfo {
  std::string path, run_dir;
  CheckpointMeta meta;
  Config config;
};
CheckpointInfo open_checkpoint(const std::string& target);

// A model trained on the recall task (data.task = "mqar") has no text and no tokenizer: `command` (what needs them)
// refuses it here with one line naming the checkpoint and `ssmax-gpt recall`. UsageError.
void refuse_without_text(const CheckpointMeta& meta, const std::string& checkpoint, const std::string& command);

// Reads only the meta (to check shapes and configs before building a model).
CheckpointMeta read_checkpoint_meta(const std::string& path);

// The whole training state (training_state_parts()) of a model and its optimizer.
void save_checkpoint(const std::string& path, GPT& model, torch::optim::AdamW& optimizer, const CheckpointMeta& meta);

// Loads weights (and optimizer state and RNG, when an optimizer is given) into existing objects; returns the
// meta. `new_normalizer_parameters`: see ModelState.
CheckpointMeta load_checkpoint(const std::string& path, GPT& model, torch::optim::AdamW* optimizer,
                               bool new_normalizer_parameters = false);

}  // namespace ssmax
