#pragma once
// What a training loop needs, built once for a fresh run or a resume: data, model, optimizer, state.
#include <torch/torch.h>

#include <memory>

#include "data/loader.h"
#include "data/prepare.h"
#include "model/gpt.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

namespace ssmax {

struct Session {
  Config config;
  std::string run_dir;
  torch::Device device{torch::kCPU};
  PreparedDataset dataset;
  std::unique_ptr<TokenShard> train_shard, val_shard;
  std::unique_ptr<BatchLoader> train_loader, val_loader;
  GPT model{nullptr};
  std::unique_ptr<torch::optim::AdamW> optimizer;
  CheckpointMeta meta;  // step, tokens, losses: the state that the checkpoint carries
};

// "auto" | "cpu" | "cuda" | "cuda:N" → a device that exists, or UsageError saying why not.
torch::Device resolve_device(const std::string& name);

// Threads, device, dataset (prepared if needed), a freshly initialised model (seeded) and optimizer.
std::unique_ptr<Session> make_session(const Config& config, const std::string& run_dir);

// Runs steps meta.step+1 … max_steps (or options.stop_at), logging, evaluating and checkpointing.
TrainSummary run_training_loop(Session& session, const TrainOptions& options);

}  // namespace ssmax
