#pragma once
// A trained model loaded for evaluation: checkpoint, resolved config, weights on a device, and the
// run's tokenizer and validation split. Shared by generate, eval, attention and needle.
#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "data/prepare.h"
#include "data/shard.h"
#include "data/token_source.h"
#include "data/tokenizer.h"
#include "eval/eval_commands.h"
#include "model/gpt.h"
#include "train/checkpoint.h"
#include "train/precision.h"

namespace ssmax {

struct EvalLoadOptions {
  std::string device = "auto";  // auto | cpu | cuda | cuda:N
  // A normalizer evaluated in place of the trained one (eval_commands.h); a trained s stays as trained.
  NormalizerSwap swap;
  // RoPE base override (rope models only): rope_theta sets it, rope_theta_scale multiplies it (one of them).
  std::optional<double> rope_theta, rope_theta_scale;
  int label_components = 1;  // path components of the run directory in the label (see label_components())
};

struct EvalModel {
  std::string target;      // as given on the command line
  std::string checkpoint;  // the resolved checkpoint file
  std::string run_dir;     // the run directory it belongs to
  CheckpointMeta meta;
  Config config;       // as trained, except the overrides applied here (normalizer, rope_theta)
  GPT model{nullptr};  // in eval mode, on `device`
  torch::Device device{torch::kCPU};
  std::string label;  // short name for tables and plots: run directory name + step (+ overrides)

  bool learned_positions() const { return config.model.position == "learned"; }
  int64_t block_size() const { return config.model.block_size; }
};

// Applies options.swap to the config of a model trained as `config` says; returns true when the swap changes the
// normalizer (its new parameters, if any, start as NormalizerSwap says). Throws UsageError naming `checkpoint` for a
// swap that is not allowed.
bool swap_normalizer(Config& config, const EvalLoadOptions& options, const std::string& checkpoint);

// Loads CHECKPOINT (file or run directory). Throws UsageError for bad targets/overrides and RuntimeFailure
// for unreadable files.
EvalModel load_eval_model(const std::string& target, const EvalLoadOptions& options = {});

// 1 when the targets' run directories have distinct names, else 2 (parent/name), so labels stay apart.
int label_components(const std::vector<std::string>& targets);

// The prepared dataset a checkpoint was trained on (tokenizer + shards), checked against its fingerprint. From the
// meta alone, so commands can check their inputs against every checkpoint's data before loading any model.
PreparedDataset checkpoint_dataset(const CheckpointMeta& meta, const std::string& checkpoint);
inline PreparedDataset eval_dataset(const EvalModel& model) { return checkpoint_dataset(model.meta, model.checkpoint); }

// The start of every evaluation command: sets the intra-op threads (n > 0, else every core), makes the load options
// (the device, the normalizer swap, the label length that keeps `targets` apart) and, with --precision bf16, runs
// the command's forward passes under autocast for as long as it lives.
class Evaluation {
 public:
  // `rope_theta`, `rope_theta_scale`: the RoPE base override of `eval` and `recall` (EvalLoadOptions).
  Evaluation(const EvalRuntimeArgs& runtime, const NormalizerSwap& swap, const std::vector<std::string>& targets,
             std::optional<double> rope_theta = std::nullopt, std::optional<double> rope_theta_scale = std::nullopt);
  EvalLoadOptions load;

 private:
  AutocastScope precision_;
};

}  // namespace ssmax
