// split_heads (qkv_rope.h): the fused CPU kernel against its composite form, forward and backward.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "kernels/qkv_rope.h"

namespace ssmax {
namespace {

struct Case {
  int64_t B, T, H, D;
  bool rope;
  bool per_row_scale;  // [H, T] learnable factor (SSMax) or a [1, 1] constant (softmax's 1/√d)
  // Packed documents: every row of the batch has its own positions, so its own tables [B, T, D/2] and, with a
  // per-row scale, its own factors [B, H, T].
  bool per_batch_row = false;
};

std::pair<torch::Tensor, torch::Tensor> tables(int64_t T, int64_t D, torch::Dtype dtype, int64_t B = 0) {
  auto inv_freq = torch::pow(10000.0, -torch::arange(0, D / 2, torch::kDouble) / static_cast<double>(D / 2));
  // offset 3, as with a KV cache; per batch row (B > 0): positions restarting where documents start
  auto positions =
      B == 0 ? torch::arange(3, 3 + T, torch::kDouble)
             : torch::remainder(torch::arange(B * T, torch::kDouble).view({B, T}), 3 + torch::arange(B).view({B, 1}));
  auto angles = positions.unsqueeze(-1) * inv_freq;
  return {angles.cos().to(dtype), angles.sin().to(dtype)};
}

struct Result {
  std::vector<torch::Tensor> outputs, grads;  // q, k, v; d qkv, d scale
};

// Runs forward and a backward of Σ (q·wq + k·wk + v·wv) with fixed random weights.
template <typename Split>
Result run(const Case& c, torch::Dtype dtype, Split split) {
  torch::manual_seed(7);
  auto qkv = torch::randn({c.B, c.T, 3 * c.H * c.D}, torch::kDouble).to(dtype).requires_grad_();
  const std::vector<int64_t> scale_shape =
      c.per_row_scale ? (c.per_batch_row ? std::vector<int64_t>{c.B, c.H, c.T} : std::vector<int64_t>{c.H, c.T})
                      : std::vector<int64_t>{1, 1};
  auto scale = (c.per_row_scale ? torch::rand(scale_shape, torch::kDouble) + 0.5
                                : torch::full(scale_shape, 0.125, torch::kDouble))
                   .to(dtype)
                   .requires_grad_(c.per_row_scale);
  auto weights = torch::randn({3, c.B, c.H, c.T, c.D}, torch::kDouble).to(dtype);
  torch::Tensor cos, sin;
  if (c.rope) std::tie(cos, sin) = tables(c.T, c.D, dtype, c.per_batch_row ? c.B : 0);
  HeadTensors heads = split(qkv, c.H, cos, sin, scale);
  auto loss = (heads.q * weights[0]).sum() + (heads.k * weights[1]).sum() + (heads.v * weights[2]).sum();
  loss.backward();
  Result r{{heads.q.detach(), heads.k.detach(), heads.v.detach()}, {qkv.grad()}};
  if (c.per_row_scale) r.grads.push_back(scale.grad());
  return r;
}

const std::vector<Case> kCases = {{2, 5, 3, 8, true, true},       {3, 7, 2, 6, true, false},
                                  {2, 4, 2, 4, false, true},      {1, 9, 4, 16, false, false},
                                  {3, 6, 2, 8, true, true, true}, {2, 7, 3, 4, true, false, true},
                                  {3, 5, 2, 4, false, true, true}};

TEST(QkvRope, KernelMatchesTheCompositeFormInDoublePrecisionReference) {
  for (const auto& c : kCases) {
    SCOPED_TRACE("B " + std::to_string(c.B) + " T " + std::to_string(c.T) + " rope " + std::to_string(c.rope));
    const Result fused = run(c, torch::kFloat32, split_heads);
    const Result reference = run(c, torch::kDouble, split_heads_composite);
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_TRUE(fused.outputs[i].is_contiguous());
      EXPECT_TRUE(torch::allclose(fused.outputs[i].to(torch::kDouble), reference.outputs[i], 1e-6, 1e-6)) << i;
    }
    ASSERT_EQ(fused.grads.size(), reference.grads.size());
    for (size_t i = 0; i < fused.grads.size(); ++i)
      EXPECT_TRUE(torch::allclose(fused.grads[i].to(torch::kDouble), reference.grads[i], 1e-5, 1e-5)) << i;
  }
}

TEST(QkvRope, ForwardIsBitIdenticalToTheCompositeFloatForm) {
  // The kernel does the composite's float operations in the same order, so swapping it in keeps a model's
  // outputs (and the golden losses) unchanged.
  for (const auto& c : kCases) {
    const Result fused = run(c, torch::kFloat32, split_heads);
    const Result composite = run(c, torch::kFloat32, split_heads_composite);
    for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(torch::equal(fused.outputs[i], composite.outputs[i])) << i;
  }
}

TEST(QkvRope, GradientsAreIdenticalForOneAndTwoThreads) {
  const int threads = at::get_num_threads();
  for (const Case& c : {Case{4, 33, 2, 8, true, true}, Case{4, 33, 2, 8, true, true, true}}) {
    at::set_num_threads(1);
    const Result one = run(c, torch::kFloat32, split_heads);
    at::set_num_threads(2);
    const Result two = run(c, torch::kFloat32, split_heads);
    at::set_num_threads(threads);
    for (size_t i = 0; i < one.grads.size(); ++i) EXPECT_TRUE(torch::equal(one.grads[i], two.grads[i])) << i;
  }
}

TEST(QkvRope, OtherDtypesTakeTheCompositePath) {
  const Case c{2, 5, 3, 8, true, true};
  const Result a = run(c, torch::kDouble, split_heads);
  const Result b = run(c, torch::kDouble, split_heads_composite);
  for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(torch::equal(a.outputs[i], b.outputs[i]));
  for (size_t i = 0; i < a.grads.size(); ++i) EXPECT_TRUE(torch::equal(a.grads[i], b.grads[i]));
}

TEST(QkvRope, RejectsTablesOfTheWrongShape) {
  auto qkv = torch::randn({1, 4, 3 * 2 * 8});
  auto [cos, sin] = tables(5, 8, torch::kFloat32);
  EXPECT_THROW(split_heads(qkv, 2, cos, sin, torch::ones({1, 1})), c10::Error);
  auto [row_cos, row_sin] = tables(4, 8, torch::kFloat32, /*B=*/3);  // tables for 3 rows, a batch of 1
  EXPECT_THROW(split_heads(qkv, 2, row_cos, row_sin, torch::ones({1, 1})), c10::Error);
}

}  // namespace
}  // namespace ssmax
