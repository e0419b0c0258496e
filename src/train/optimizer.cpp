#include "train/optimizer.h"

namespace ssmax {
namespace {

torch::optim::AdamWOptions group_options(const OptimConfig& optim, double weight_decay) {
  return torch::optim::AdamWOptions(optim.lr)
      .betas({optim.beta1, optim.beta2})
      .eps(optim.eps)
      .weight_decay(weight_decay);
}

}  // namespace

std::unique_ptr<torch::optim::AdamW> make_optimizer(torch::nn::Module& model, const OptimConfig& optim) {
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& p : model.parameters()) {
    if (!p.requires_grad()) continue;
    (p.dim() >= 2 ? decay : no_decay).push_back(p);
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(group_options(optim, optim.weight_decay)));
  groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(group_options(optim, 0.0)));
  return std::make_unique<torch::optim::AdamW>(groups, group_options(optim, optim.weight_decay));
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
}

void apply_optimizer_config(torch::optim::AdamW& optimizer, const OptimConfig& optim) {
  auto& groups = optimizer.param_groups();
  for (size_t i = 0; i < groups.size(); ++i) {
    auto& options = static_cast<torch::optim::AdamWOptions&>(groups[i].options());
    options.lr(optim.lr).betas({optim.beta1, optim.beta2}).eps(optim.eps);
    options.weight_decay(i == 0 ? optim.weight_decay : 0.0);
  }
}

}  // namespace ssmax
