#pragma once
// One optimizer step over train.grad_accum_steps micro-batches: forward (under autocast), backward, the gradient
// all-reduce when distributed, clip, AdamW. The training loop (train, resume, finetune) and `bench` both take their
// steps here, so the step `bench` times is the step that trains.
#include <torch/torch.h>

#include <array>
#include <chrono>
#include <memory>
#include <vector>

#include "train/session.h"

namespace ssmax {

class GradientSync;

// The parts of a step `bench` reports: a micro-batch to the device, forward with the loss, backward (with the
// gradient all-reduce), then clip and update.
enum class StepPhase { Data = 0, Forward, Backward, Update };

// Where a step's time goes: each lap waits for the device, then adds the time since the previous lap to a phase.
class StepPhaseClock {
 public:
  explicit StepPhaseClock(const torch::Device& device) : device_(device) {}
  void start();  // a new step: all phases back to 0
  void lap(StepPhase phase);
  double seconds(StepPhase phase) const { return seconds_[static_cast<size_t>(phase)]; }
  double total() const;

 private:
  void wait_for_device() const;
  torch::Device device_;
  std::chrono::steady_clock::time_point mark_;
  std::array<double, 4> seconds_{};
};

struct StepResult {
  double loss = 0;             // mean over the step's micro-batches, all processes
  double grad_norm = 0;        // before clipping
  int64_t tokens = 0;          // input tokens of the step, all processes
  double sync_seconds = 0;     // waiting for the gradient all-reduce (distributed)
  std::vector<double> summed;  // the caller's `values_to_sum`, summed over the processes
  bool updated = false;        // false: the loss or the gradient norm was not finite, the weights were left alone
};

class TrainStep {
 public:
  // Distributed (torchrun): broadcasts rank 0's weights and sets up the bucketed gradient all-reduce.
  explicit TrainStep(Session& session);
  ~TrainStep();

  // Step `step` (0-based) at the learning rate already set. Rank r takes the global micro-batches r·accum …
  // r·accum + accum − 1: together the ranks see what one process with accum × world micro-batches would.
  // `prefetch_next`: gather the next step's first micro-batch during this step's last backward pass.
  // `values_to_sum` ride on the step's one small all-reduce (the trainer's stop requests).
  StepResult run(int64_t step, bool prefetch_next, const std::vector<double>& values_to_sum = {},
                 StepPhaseClock* clock = nullptr);

  bool distributed() const { return gradient_sync_ != nullptr; }

 private:
  Session& s_;
  std::vector<torch::Tensor> trainable_;
  double clip_;
  std::unique_ptr<GradientSync> gradient_sync_;
};

}  // namespace ssmax
