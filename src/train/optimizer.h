#pragma once
// AdamW with two parameter groups: weight decay on tensors of rank >= 2 (matrices, embeddings) and
// none on the rest (norm weights, biases, SSMax s and b). Frozen parameters (learn_s=false) are left out.
#include <torch/torch.h>

#include <memory>

#include "config/config.h"

namespace ssmax {

// torch::optim::AdamW with its update done by ATen's fused kernel (_fused_adamw_: one pass over each parameter,
// on CPU and CUDA) instead of the reference implementation's five to seven tensor operations per parameter. The
// state (step, exp_avg, exp_avg_sq) and its serialisation are AdamW's own, so checkpoints are interchangeable.
// Falls back to AdamW::step for what the kernel does not take (sparse gradients, a closure).
class FusedAdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;
  torch::Tensor step(LossClosure closure = nullptr) override;
};

// LibTorch param groups built with their own options do not inherit the optimizer's defaults, so
// every group gets lr, betas, eps and weight decay explicitly here.
std::unique_ptr<torch::optim::AdamW> make_optimizer(torch::nn::Module& model, const OptimConfig& optim);

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

// torch::nn::utils::clip_grad_norm_ (L2, the same arithmetic, so the same numbers) that leaves the total norm on the
// gradients' device instead of reading it back: on CUDA the step then runs on without waiting for the device.
// Returns the norm before clipping (a 0-dim tensor; 0 when no parameter has a gradient).
torch::Tensor clip_grad_norm(const std::vector<torch::Tensor>& parameters, double max_norm);

// Re-applies lr/betas/eps/weight decay from the config: torch::load(optimizer) restores moments and
// step counts but not these.
void apply_optimizer_config(torch::optim::AdamW& optimizer, const OptimConfig& optim);

}  // namespace ssmax
