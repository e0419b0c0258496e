#pragma once
// What a training loop needs, built once for a fresh run, a resume or a finetune: the objective (data and
// loss), model, optimizer and the state that checkpoints carry.
#include <torch/torch.h>

#include <memory>
#include <string>
#include <utility>

#include "data/prepare.h"
#include "model/gpt.h"
#include "run/device.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

namespace ssmax {

// A training micro-batch on the device: what TrainingObjective::train_loss takes.
struct TrainBatch {
  torch::Tensor inputs;     // [B, T] token ids
  torch::Tensor targets;    // [B, T] what the loss is taken on (-100: ignored)
  torch::Tensor positions;  // [B, T] positions within documents, or undefined (data/loader.h)
  // [B, T] a second set of targets an objective weighs in (finetune: the prompt's next tokens), or undefined
  torch::Tensor extra_targets;
  // [N] flat indices b·T + t of the only positions the loss reads (the recall task's answers), or undefined: all
  torch::Tensor answer_rows;
  int64_t tokens() const { return inputs.numel(); }
};

// What the loop minimises. Batches must be a pure function of (step, micro) so that a resumed run sees
// exactly the batches an unbroken one would.
class TrainingObjective {
 public:
  virtual ~TrainingObjective() = default;
  // Micro-batch `micro` of step `step`, on `device`.
  virtual TrainBatch train_batch(int64_t step, int micro, const torch::Device& device) = 0;
  // Its loss (not yet divided by the accumulation steps).
  virtual torch::Tensor train_loss(GPT& model, const TrainBatch& batch) = 0;
  // The micro-batch train_batch will be asked for next: an objective may start preparing it now.
  virtual void prefetch(int64_t /*step*/, int /*micro*/, const torch::Device& /*device*/) {}
  // Mean loss over `batches` fixed validation batches (called under NoGradGuard, model in eval mode).
  virtual double validation_loss(GPT& model, int batches, const torch::Device& device) = 0;
  // Sum of the losses of validation batches rank, rank + world, … < batches: a distributed run's share of this
  // rank. Objectives that cannot split their validation do not support distributed training.
  virtual double validation_loss_sum(GPT& model, int batches, int rank, int world, const torch::Device& device);
  virtual std::string loss_name() const { return "loss"; }             // in the log lines of the validation loss
  virtual std::string train_loss_name() const { return loss_name(); }  // ... and of the training loss
  virtual std::string baseline_note() const { return ""; }             // what to compare the final loss with
  // The share of a batch's positions the LM head runs on (GPT::flops_per_token: what MFU counts).
  virtual double head_share() const { return 1.0; }
};

// Next-token loss on every position of block_size windows of the prepared train/val shards (`bench` hands it a
// dataset of synthetic tokens).
std::unique_ptr<TrainingObjective> language_model_objective(const PreparedDataset& dataset, const Config& config);

// The recall task of data.task = "mqar" (data/recall_task.h): cross-entropy on the answers; the validation also logs
// the share of answers right.
std::unique_ptr<TrainingObjective> recall_objective(const Config& config);

struct Session {
  Config config;
  std::string run_dir;
  torch::Device device{torch::kCPU};
  PreparedDataset dataset;
  std::unique_ptr<TrainingObjective> objective;
  GPT model{nullptr};
  std::unique_ptr<torch::optim::AdamW> optimizer;
  CheckpointMeta meta;           // step, tokens, losses: the state that the checkpoint carries
  std::string continue_command;  // printed when the loop stops early: how to carry on
};

// Threads, device, a freshly initialised model (seeded) and its optimizer; no dataset, no objective. On the CPU the
// library of the float32 products is chosen (train/cpu_blas.h): `resumed_with` is the one a resumed run's checkpoint
// names (CheckpointMeta::cpu_blas_used), kept when config.cpu_blas is "auto".
std::unique_ptr<Session> make_model_session(const Config& config, const std::string& run_dir, int64_t vocab_size,
                                            const std::string& resumed_with = "");

// make_model_session() plus the dataset (prepared if needed) and the language-model objective.
std::unique_ptr<Session> make_session(const Config& config, const std::string& run_dir,
                                      const std::string& resumed_with = "");

// Under a distributed launch (torchrun): joins the process group on the config's device and quiets the console of
// ranks other than 0. A no-op for one process.
void join_process_group(const Config& config);
// Each rank's device, host and threads (empty for one process), for the run header.
std::vector<std::string> describe_ranks(const torch::Device& device);

// Runs steps meta.step+1 … max_steps (or options.stop_at), logging, evaluating and checkpointing.
TrainSummary run_training_loop(Session& session, const TrainOptions& options);

// Continuing a run from the checkpoint `meta` came from (rank 0 only): cuts metrics.jsonl and train.log back to
// their sizes when it was saved, dropping what an interrupted process wrote after it, and logs into train.log again.
void reopen_run_logs(const std::string& run_dir, const CheckpointMeta& meta);

}  // namespace ssmax
