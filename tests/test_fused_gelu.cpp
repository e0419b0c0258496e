// Pins the fused GELU (tanh approximation) to its formula and gradient: against the formula in double precision over
// the whole float range that matters, at the extremes, bit for bit across thread counts, and on the ATen paths.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cfloat>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "kernels/fused_gelu.h"

namespace ssmax {
namespace {

constexpr double kSqrt2OverPi = 0.79788456080286535588;
constexpr double kCubic = 0.044715;

struct Outputs {
  torch::Tensor y, dx;
};

// y and dx of fused_gelu_tanh at a fresh leaf holding x's values, backpropagating g.
Outputs fused(const torch::Tensor& x, const torch::Tensor& g) {
  auto xl = x.detach().clone().requires_grad_(true);
  auto y = fused_gelu_tanh(xl);
  y.backward(g);
  return {y.detach(), xl.grad()};
}

std::string grad_fn_name(const torch::Tensor& y) { return y.grad_fn() ? y.grad_fn()->name() : "(no grad_fn)"; }

bool took_fast_path(const torch::Tensor& y) { return grad_fn_name(y).find("FusedGeluTanh") != std::string::npos; }

// The formula in double: y = 0.5·x·(1 + t), dy/dx = a + b with a = 0.5·(1 + t), b = 0.5·x·(1 − t²)·du/dx. Evaluated
// literally (std::tanh) where nothing cancels; for the tails, the exact identities 1 + tanh(u) = 2/(1 + e^−2u) and
// 1 − tanh²(u) = 4·e^−2|u| / (1 + e^−2|u|)², without which even double loses everything below x ≈ −8.
struct Reference {
  double y, a, b, u;
};

Reference reference(double x) {
  const double u = kSqrt2OverPi * (x + kCubic * x * x * x);
  const double du = kSqrt2OverPi * (1 + 3 * kCubic * x * x);
  double one_plus_t, one_minus_t2;
  if (std::fabs(u) < 1) {
    const double t = std::tanh(u);
    one_plus_t = 1 + t;
    one_minus_t2 = 1 - t * t;
  } else {
    const double e = std::exp(-2 * std::fabs(u));
    one_plus_t = u > 0 ? 2 - 2 * e / (1 + e) : 2 * e / (1 + e);
    one_minus_t2 = 4 * e / ((1 + e) * (1 + e));
  }
  return {0.5 * x * one_plus_t, 0.5 * one_plus_t, 0.5 * x * one_minus_t2 * du, u};
}

// Error bound: computing u in float already costs a few ulps of u, and σ(2u) = (1 + tanh u)/2 amplifies u's relative
// error by up to |2u| (it is e^2u in the left tail). Measured on the grid and on randn: err ≤ 1.5·ε·scale·(1 + |2u|)
// for y and for dy/dx (scale = |y|, resp. |a| + |b| since a + b cancels near x ≈ −0.75), AVX2 and baseline alike. 8
// leaves 5x headroom, while 0.0447 for 0.044715 misses by ~2000x and erf-GELU by ~10^7x (ATen's own float kernel, whose
// 1 + tanh cancels, by ~10^5x below x ≈ −5). The floor covers σ below float's normal range (x < −10).
constexpr double kUlps = 8;
constexpr double kFloor = 1e-33;

double tolerance(double scale, double u) { return kUlps * FLT_EPSILON * scale * (1 + std::fabs(2 * u)) + kFloor; }

// Compares y and dx (with g = 1) with the reference at every x.
void expect_matches_reference(const torch::Tensor& x) {
  const auto out = fused(x, torch::ones_like(x));
  const float* px = x.data_ptr<float>();
  const float* py = out.y.data_ptr<float>();
  const float* pd = out.dx.data_ptr<float>();
  int64_t bad_y = 0, bad_dx = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const Reference r = reference(px[i]);
    const double err_y = std::fabs(py[i] - r.y), err_dx = std::fabs(pd[i] - (r.a + r.b));
    if (!(err_y <= tolerance(std::fabs(r.y), r.u)) && bad_y++ < 5)
      ADD_FAILURE() << "y(" << px[i] << ") = " << py[i] << ", expected " << r.y << " (error " << err_y << ")";
    if (!(err_dx <= tolerance(std::fabs(r.a) + std::fabs(r.b), r.u)) && bad_dx++ < 5)
      ADD_FAILURE() << "dy/dx(" << px[i] << ") = " << pd[i] << ", expected " << r.a + r.b << " (error " << err_dx
                    << ")";
  }
  EXPECT_EQ(bad_y, 0);
  EXPECT_EQ(bad_dx, 0);
}

// Restores the intra-op thread count a test changes, even when an assertion returns early.
struct ThreadCountGuard {
  int previous = at::get_num_threads();
  ~ThreadCountGuard() { at::set_num_threads(previous); }
};

TEST(FusedGelu, MatchesDoubleReferenceOnGrid) {
  // 240001 points, [-12, 12] in steps of 1e-4: saturation on both sides, the minimum near −0.75, the crossover where
  // σ(2u) = ½, and every vector-tail position.
  auto x = torch::linspace(-12, 12, 240001, torch::kFloat);
  auto probe = fused_gelu_tanh(x.clone().requires_grad_(true));
  EXPECT_TRUE(took_fast_path(probe)) << grad_fn_name(probe);
  expect_matches_reference(x);
}

TEST(FusedGelu, MatchesDoubleReferenceOnRandomValues) {
  torch::manual_seed(7);
  // Activation-like values, a wide spread, and tiny ones (where y ≈ x/2 is exact to the last bit).
  expect_matches_reference(torch::randn({64, 257}));
  expect_matches_reference(torch::randn({3, 1000}) * 5);
  expect_matches_reference(torch::randn({1000}) * 1e-20);
}

TEST(FusedGelu, RandomGradientScalesTheDerivative) {
  torch::manual_seed(8);
  auto x = torch::randn({33, 70}) * 2, g = torch::randn({33, 70});
  const auto with_g = fused(x, g), with_ones = fused(x, torch::ones_like(x));
  EXPECT_TRUE(torch::equal(with_g.y, with_ones.y));
  // dx = g·(dy/dx) rounded once.
  EXPECT_TRUE(torch::equal(with_g.dx, g * with_ones.dx));
}

TEST(FusedGelu, ExtremeInputsGiveTheLimits) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> x = {1e30f, 1e10f, 20.0f, inf, -1e30f, -1e10f, -20.0f, -10.5f, -inf, 0.0f, -0.0f};
  const std::vector<float> y = {1e30f, 1e10f, 20.0f, inf, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  const std::vector<float> dydx = {1, 1, 1, 1, 0, 0, 0, 0, 0, 0.5f, 0.5f};
  const auto out = fused(torch::tensor(x), torch::ones({static_cast<int64_t>(x.size())}));
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(out.y[i].item<float>(), y[i]) << "y(" << x[i] << ")";
    EXPECT_EQ(out.dx[i].item<float>(), dydx[i]) << "dy/dx(" << x[i] << ")";
  }
  const auto nan = fused(torch::full({3}, std::nanf("")), torch::ones({3}));
  EXPECT_TRUE(nan.y.isnan().all().item<bool>());
  EXPECT_TRUE(nan.dx.isnan().all().item<bool>());
}

TEST(FusedGelu, ForwardWorksWithoutGrad) {
  torch::manual_seed(9);
  auto x = torch::randn({5, 7, 11}).requires_grad_(true);
  torch::Tensor y;
  {
    torch::NoGradGuard no_grad;
    y = fused_gelu_tanh(x);
  }
  EXPECT_FALSE(y.requires_grad());
  EXPECT_FALSE(y.grad_fn());
  EXPECT_EQ(y.sizes(), x.sizes());
  EXPECT_TRUE(torch::equal(y, fused_gelu_tanh(x).detach()));
  EXPECT_FALSE(fused_gelu_tanh(x.detach()).requires_grad());
}

TEST(FusedGelu, NonContiguousInputMatchesContiguous) {
  torch::manual_seed(10);
  auto x = torch::randn({40, 24}), g = torch::randn({24, 40});
  const auto strided = fused(x.t(), g), dense = fused(x.t().contiguous(), g);
  EXPECT_EQ(strided.y.sizes(), dense.y.sizes());
  EXPECT_TRUE(torch::equal(strided.y, dense.y));
  EXPECT_TRUE(torch::equal(strided.dx, dense.dx));
}

TEST(FusedGelu, BitIdenticalForAnyThreadCount) {
  ThreadCountGuard guard;
  torch::manual_seed(11);
  // Five grains and an odd tail: two threads split it at a point the vector loops do not align to.
  auto x = torch::randn({5 * 32768 + 77}) * 3, g = torch::randn({5 * 32768 + 77});
  at::set_num_threads(1);
  const auto one = fused(x, g);
  at::set_num_threads(2);
  const auto two = fused(x, g);
  EXPECT_TRUE(torch::equal(one.y, two.y));
  EXPECT_TRUE(torch::equal(one.dx, two.dx));
}

// Double (like bf16, half and CUDA) is ATen's own gelu, bit for bit.
TEST(FusedGelu, DoubleInputTakesTheAtenPath) {
  torch::manual_seed(12);
  auto dbl = torch::TensorOptions().dtype(torch::kDouble);
  auto x = torch::randn({9, 31}, dbl) * 3, g = torch::randn({9, 31}, dbl);
  auto probe = fused_gelu_tanh(x.clone().requires_grad_(true));
  EXPECT_FALSE(took_fast_path(probe)) << grad_fn_name(probe);
  const auto actual = fused(x, g);
  auto xl = x.clone().requires_grad_(true);
  auto y = torch::gelu(xl, "tanh");
  y.backward(g);
  EXPECT_TRUE(torch::equal(actual.y, y.detach()));
  EXPECT_TRUE(torch::equal(actual.dx, xl.grad()));
}

// create_graph: the backward must itself be differentiable; it then runs ATen's gelu_backward, so it matches ATen.
TEST(FusedGelu, DoubleBackwardMatchesAten) {
  torch::manual_seed(13);
  auto x = torch::randn({6, 19}) * 2, g = torch::randn({6, 19}), h = torch::randn({6, 19});
  auto second = [&](auto fn) {
    auto xl = x.clone().requires_grad_(true);
    auto first = torch::autograd::grad({fn(xl)}, {xl}, {g}, true, true)[0];
    auto grad2 = torch::autograd::grad({(first * h).sum()}, {xl})[0];
    return std::vector<torch::Tensor>{first.detach(), grad2};
  };
  const auto actual = second([](const torch::Tensor& v) { return fused_gelu_tanh(v); });
  const auto expected = second([](const torch::Tensor& v) { return torch::gelu(v, "tanh"); });
  EXPECT_TRUE(torch::allclose(actual[0], expected[0], 1e-6, 1e-7));
  EXPECT_TRUE(torch::allclose(actual[1], expected[1], 1e-6, 1e-7));
}

// On CUDA, torch::gelu runs; it must agree with the CPU kernel (in absolute terms: ATen's 1 + tanh cancels for x < 0).
TEST(FusedGelu, CudaFallbackMatchesCpuKernel) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  torch::manual_seed(14);
  auto x = torch::randn({4, 16, 40}) * 3, g = torch::randn({4, 16, 40});
  const auto cpu = fused(x, g);
  const auto cuda = fused(x.cuda(), g.cuda());
  EXPECT_TRUE(torch::allclose(cuda.y.cpu(), cpu.y, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(cuda.dx.cpu(), cpu.dx, 1e-5, 1e-6));
}

}  // namespace
}  // namespace ssmax
