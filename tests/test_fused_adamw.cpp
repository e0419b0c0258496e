// FusedAdamW (train/optimizer.h) against LibTorch's reference AdamW: same updates, same saved state; clip_grad_norm
// against LibTorch's clip_grad_norm_: the same clipped gradients and norm, bit for bit.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>
#include <sstream>

#include "train/optimizer.h"

namespace ssmax {
namespace {

std::vector<torch::Tensor> fresh_parameters() {
  torch::manual_seed(11);
  return {torch::randn({7, 5}).requires_grad_(), torch::randn({5}).requires_grad_(),
          torch::randn({3, 2, 4}).requires_grad_()};
}

template <typename Optimizer>
std::unique_ptr<Optimizer> make(const std::vector<torch::Tensor>& params) {
  auto options = [](double decay) {
    return std::make_unique<torch::optim::AdamWOptions>(
        torch::optim::AdamWOptions(3e-2).betas({0.9, 0.95}).eps(1e-8).weight_decay(decay));
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{params[0], params[2]}, options(0.1));
  groups.emplace_back(std::vector<torch::Tensor>{params[1]}, options(0.0));
  return std::make_unique<Optimizer>(groups, *options(0.1));
}

// Steps with gradients drawn from a fixed stream; parameter 1 gets no gradient on odd steps (skipped, as by AdamW).
void train(torch::optim::Optimizer& optimizer, std::vector<torch::Tensor>& params, int steps) {
  torch::manual_seed(5);
  for (int step = 0; step < steps; ++step) {
    optimizer.zero_grad();
    for (size_t i = 0; i < params.size(); ++i) {
      auto grad = torch::randn(params[i].sizes());
      if (i == 1 && step % 2 == 1) continue;
      params[i].mutable_grad() = grad;
    }
    optimizer.step();
  }
}

TEST(FusedAdamW, MatchesTheReferenceAdamW) {
  auto fused_params = fresh_parameters(), reference_params = fresh_parameters();
  auto fused = make<FusedAdamW>(fused_params);
  auto reference = make<torch::optim::AdamW>(reference_params);
  train(*fused, fused_params, 6);
  train(*reference, reference_params, 6);
  for (size_t i = 0; i < fused_params.size(); ++i) {
    EXPECT_FALSE(torch::equal(fused_params[i], fresh_parameters()[i]));  // it did move
    EXPECT_TRUE(torch::allclose(fused_params[i], reference_params[i], 1e-5, 1e-6)) << i;
  }
}

TEST(FusedAdamW, ItsSavedStateResumesInTheReferenceAdamW) {
  auto params = fresh_parameters();
  auto fused = make<FusedAdamW>(params);
  train(*fused, params, 3);
  std::stringstream archive;
  torch::save(*fused, archive);
  auto reference = make<torch::optim::AdamW>(params);
  torch::load(*reference, archive);
  for (const auto& p : params) {
    const auto& a = static_cast<torch::optim::AdamWParamState&>(*fused->state().at(p.unsafeGetTensorImpl()));
    const auto& b = static_cast<torch::optim::AdamWParamState&>(*reference->state().at(p.unsafeGetTensorImpl()));
    EXPECT_EQ(a.step(), b.step());
    EXPECT_TRUE(torch::equal(a.exp_avg(), b.exp_avg()));
    EXPECT_TRUE(torch::equal(a.exp_avg_sq(), b.exp_avg_sq()));
  }
  EXPECT_EQ(static_cast<torch::optim::AdamWParamState&>(*fused->state().at(params[1].unsafeGetTensorImpl())).step(), 2);
}

TEST(ClipGradNorm, EqualsLibTorchsBitForBitAndStaysOnTheDevice) {
  for (const double max_norm : {0.5, 1e9, std::numeric_limits<double>::infinity()}) {
    auto ours = fresh_parameters(), theirs = fresh_parameters();
    torch::manual_seed(12);
    for (size_t i = 0; i < ours.size(); ++i) {
      const auto g = torch::randn(ours[i].sizes()) * 3;
      ours[i].mutable_grad() = g.clone();
      theirs[i].mutable_grad() = g.clone();
    }
    const torch::Tensor norm = clip_grad_norm(ours, max_norm);
    const double expected = torch::nn::utils::clip_grad_norm_(theirs, max_norm);
    EXPECT_EQ(norm.dim(), 0);
    EXPECT_EQ(norm.item<double>(), expected) << max_norm;
    for (size_t i = 0; i < ours.size(); ++i) EXPECT_TRUE(torch::equal(ours[i].grad(), theirs[i].grad())) << max_norm;
  }
  EXPECT_EQ(clip_grad_norm({torch::zeros({2}).requires_grad_()}, 1.0).item<double>(), 0);  // no gradient
}

}  // namespace
}  // namespace ssmax
