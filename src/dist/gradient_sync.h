#pragma once
// Averages gradients across ranks the way DDP does: parameters are grouped into flat buckets (in reverse order,
// the order backward produces their gradients) and every parameter's .grad is a view into its bucket, so backward
// accumulates straight into the buffers that are all-reduced: no copies. With `overlap`, a bucket's all-reduce
// starts as soon as the final micro-batch's backward pass has accumulated the last of its gradients (a hook on
// each gradient accumulator), while backward goes on through earlier layers; without it, all buckets start after
// backward.
//
// The all-reduce sums; the trainer divides each micro-batch's loss by grad_accum_steps × world_size, so the sum is
// the mean over the global batch, computed as a one-process run with grad_accum_steps × world_size would.
#include <torch/torch.h>

#include <memory>
#include <vector>

#include "dist/distributed.h"

namespace ssmax {

class GradientSync {
 public:
  GradientSync(const std::vector<torch::Tensor>& parameters, Distributed& dist, int64_t bucket_bytes, bool overlap);
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;

  // Zeroes the gradients in place (set_to_none would cut the views).
  void zero_grad();
  // Call before the backward pass of a step's last micro-batch.
  void arm();
  // Call after it: starts the buckets not yet started, waits for all. Returns the seconds spent waiting.
  double finish();
  int buckets() const { return static_cast<int>(state_->buckets.size()); }

 private:
  struct Bucket {
    torch::Tensor flat;
    int parameters = 0;
    int ready = 0;  // gradients accumulated during the armed backward pass
    c10::intrusive_ptr<c10d::Work> work;
  };
  // Shared with the hooks, which hold it weakly: they outlive this object on the parameters' accumulators.
  struct State {
    Distributed* dist = nullptr;
    bool overlap = false, armed = false;
    std::vector<Bucket> buckets;
    void launch(Bucket& bucket);
  };
  std::shared_ptr<State> state_;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;  // kept alive: the graph holds them weakly
};

}  // namespace ssmax
