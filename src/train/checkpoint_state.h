#pragma once
// What a checkpoint holds, supplied by the owner of each piece of state (as torchtitan's checkpointer asks each
// component for its state_dict()): the checkpointer (checkpoint.h) writes and reads one archive and never knows
// the fields. A training run's parts, listed once in training_state_parts():
//   meta            TrainingProgress (CheckpointMeta): loop counters, losses, log sizes, config, dataset (JSON)
//   model/…         ModelState: weights and buffers
//   optimizer/…     OptimizerState: AdamW moments and step counts (lr/betas are re-applied from the config)
//   rng_cpu, rng_cuda  RngState: the generators' states (dropout)
// The data position needs no part of its own: batches are a pure function of (seed, step, micro-batch), so the
// step in `meta` is the position.
// Tensors load onto the device of the model they are loaded into, so a checkpoint written on CUDA opens on a
// CPU-only machine and the other way round; weights and optimizer state are float32 whatever the precision.
#include <torch/torch.h>

#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/gpt.h"

namespace ssmax {

constexpr int kCheckpointVersion = 1;

// One owner's share of a checkpoint. `path` names the checkpoint file in errors.
class CheckpointPart {
 public:
  virtual ~CheckpointPart() = default;
  virtual void save(torch::serialize::OutputArchive& archive) const = 0;
  virtual void load(torch::serialize::InputArchive& archive, const std::string& path) = 0;
};

// The training loop's counters and the run's identity: everything a resumed run needs besides tensors.
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
  uint64_t events_bytes = 0;  // the TensorBoard event file (run/tensorboard.h), cut back to this on resume
  // Processes that trained the run (torchrun's WORLD_SIZE): its global batch is batch × accum × world_size.
  int world_size = 1;
  // The library that ran the CPU's float32 products ("openblas" | "aten", train/cpu_blas.h); a resume keeps it, so that
  // a continued run rounds as an unbroken one. Empty on CUDA and in checkpoints written before it was kept.
  std::string cpu_blas_used;

  nlohmann::json to_json() const;
  static CheckpointMeta from_json(const nlohmann::json& j, const std::string& origin);
};

class TrainingProgress : public CheckpointPart {
 public:
  explicit TrainingProgress(CheckpointMeta& meta) : meta_(meta) {}
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive, const std::string& path) override;
  // Only the meta record, without touching tensors: shapes and configs are checked before a model is built.
  static CheckpointMeta read(torch::serialize::InputArchive& archive, const std::string& path);

 private:
  CheckpointMeta& meta_;
};

// Every model tensor must be in the checkpoint with the same shape, except, when `allow_new_normalizer` is set,
// SSMax s/b that the checkpoint lacks (a switch to a normalizer with more parameters, normalizer_kind.h): those
// keep their initial values and are listed in new_parameters().
class ModelState : public CheckpointPart {
 public:
  ModelState(GPT model, bool allow_new_normalizer) : model_(std::move(model)), allow_new_(allow_new_normalizer) {}
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive, const std::string& path) override;
  const std::vector<std::string>& new_parameters() const { return new_parameters_; }
  const GPT& model() const { return model_; }

 private:
  GPT model_;
  bool allow_new_;
  std::vector<std::string> new_parameters_;
};

// Parameters that ModelState found new start with empty optimizer state: load ModelState first.
class OptimizerState : public CheckpointPart {
 public:
  OptimizerState(torch::optim::AdamW& optimizer, const ModelState& model) : optimizer_(optimizer), model_(model) {}
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive, const std::string& path) override;

 private:
  torch::optim::AdamW& optimizer_;
  const ModelState& model_;
};

// The CPU generator, and the CUDA one of `device` when the run trains on CUDA (it continues only where a CUDA
// run continues on CUDA).
class RngState : public CheckpointPart {
 public:
  explicit RngState(torch::Device device) : device_(device) {}
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive, const std::string& path) override;

 private:
  torch::Device device_;
};

// The device holding the model's parameters: checkpoints load onto it, whichever device wrote them.
torch::Device model_device(GPT& model);

// Everything a training run saves, in one list: meta, model, optimizer (if given), RNG (with the optimizer).
// Without an optimizer the list restores weights only (evaluation, export, a finetune's starting point).
struct StateParts {
  std::unique_ptr<TrainingProgress> progress;
  std::unique_ptr<ModelState> model;
  std::unique_ptr<OptimizerState> optimizer;
  std::unique_ptr<RngState> rng;
  std::vector<CheckpointPart*> all() const;
};
StateParts training_state_parts(CheckpointMeta& meta, GPT& model, torch::optim::AdamW* optimizer,
                                bool allow_new_normalizer = false);

}  // namespace ssmax
