#include "train/optimizer.h"

#include "kernels/fused_kernels.h"

namespace ssmax {
namespace {

torch::optim::AdamWOptions group_options(const OptimConfig& optim, double weight_decay) {
  return torch::optim::AdamWOptions(optim.lr)
      .betas({optim.beta1, optim.beta2})
      .eps(optim.eps)
      .weight_decay(weight_decay);
}

bool fused_kernel_applies(const torch::Tensor& p) {
  const auto& grad = p.grad();
  return grad.defined() && !grad.is_sparse() && (p.is_cpu() || p.is_cuda()) && p.is_floating_point() &&
         grad.scalar_type() == p.scalar_type() && p.is_contiguous() && grad.is_contiguous();
}

}  // namespace

torch::Tensor FusedAdamW::step(LossClosure closure) {
  if (closure || !fused_kernel_enabled("adamw")) return AdamW::step(closure);
  for (auto& group : param_groups_)
    for (auto& p : group.params())
      if (p.grad().defined() && !fused_kernel_applies(p)) return AdamW::step();
  torch::NoGradGuard no_grad;
  for (auto& group : param_groups_) {
    const auto& options = static_cast<const torch::optim::AdamWOptions&>(group.options());
    std::vector<torch::Tensor> params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps;
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      auto& slot = state_[p.unsafeGetTensorImpl()];
      if (!slot) {  // as AdamW::step starts a parameter's state
        auto fresh = std::make_unique<torch::optim::AdamWParamState>();
        fresh->step(0);
        fresh->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        fresh->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        if (options.amsgrad()) fresh->max_exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        slot = std::move(fresh);
      }
      auto& state = static_cast<torch::optim::AdamWParamState&>(*slot);
      state.step(state.step() + 1);
      params.push_back(p);
      grads.push_back(p.grad());
      exp_avgs.push_back(state.exp_avg());
      exp_avg_sqs.push_back(state.exp_avg_sq());
      if (options.amsgrad()) max_exp_avg_sqs.push_back(state.max_exp_avg_sq());
      // The kernel reads the step count (for the bias corrections) from a float tensor on the parameter's device.
      steps.push_back(torch::full({}, static_cast<double>(state.step()), p.options().dtype(torch::kFloat32)));
    }
    if (params.empty()) continue;
    const auto [beta1, beta2] = options.betas();
    at::_fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, options.lr(), beta1, beta2,
                      options.weight_decay(), options.eps(), options.amsgrad(), /*maximize=*/false);
  }
  return {};
}

std::unique_ptr<torch::optim::AdamW> make_optimizer(torch::nn::Module& model, const OptimConfig& optim) {
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& p : model.parameters()) {
    if (!p.requires_grad()) continue;
    (p.dim() >= 2 ? decay : no_decay).push_back(p);
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(group_options(optim, optim.weight_decay)));
  groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(group_options(optim, 0.0)));
  return std::make_unique<FusedAdamW>(groups, group_options(optim, optim.weight_decay));
}

torch::Tensor clip_grad_norm(const std::vector<torch::Tensor>& parameters, double max_norm) {
  std::vector<torch::Tensor> grads, norms;
  for (const auto& p : parameters)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return torch::zeros({});
  for (const auto& g : grads) norms.push_back(g.data().norm(2));
  const torch::Tensor total = norms.size() == 1 ? norms[0] : torch::stack(norms).norm(2);
  const torch::Tensor coef = torch::clamp(max_norm / (total + 1e-6), std::nullopt, 1.0);
  for (auto& g : grads) g.data().mul_(coef);
  return total;
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
