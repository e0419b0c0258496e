// Pins kernels/gemm.h: OpenBLAS's products equal the double-precision product for every transpose layout the model
// uses, gemm_linear() and its gradients equal torch's linear, and the library in use is the one the build found.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

#include "kernels/gemm.h"

namespace ssmax {
namespace {

void expect_close(const torch::Tensor& actual, const torch::Tensor& expected, const std::string& what) {
  const double scale = expected.abs().max().item<double>() + 1e-30;
  const double err = (actual.to(torch::kDouble) - expected.to(torch::kDouble)).abs().max().item<double>();
  EXPECT_LT(err / scale, 2e-6) << what << ": max abs error " << err << " of " << scale;
}

bool uses_openblas() { return gemm_backend().rfind("ATen", 0) != 0; }

TEST(Gemm, TheBuildsOpenBlasIsLoaded) {
  const std::string backend = gemm_backend();
  if (backend.find("built without") != std::string::npos) GTEST_SKIP() << backend;
  EXPECT_TRUE(uses_openblas()) << backend;
  EXPECT_NE(backend.find("OpenBLAS"), std::string::npos) << backend;
}

TEST(Gemm, EveryLayoutAndAccumulateMatchDoubleProduct) {
  torch::manual_seed(5);
  for (auto [M, K, N] : {std::tuple<int64_t, int64_t, int64_t>{37, 19, 53}, {1, 64, 7}, {129, 1, 33}, {256, 96, 1}}) {
    const auto a = torch::randn({M, K}), b = torch::randn({K, N}), c0 = torch::randn({M, N});
    const auto expected = a.to(torch::kDouble).mm(b.to(torch::kDouble));
    for (bool a_t : {false, true})
      for (bool b_t : {false, true}) {
        // The same values seen through a transposed view of a contiguous tensor.
        const auto av = a_t ? a.t().contiguous().t() : a, bv = b_t ? b.t().contiguous().t() : b;
        const std::string what = "M" + std::to_string(M) + " K" + std::to_string(K) + " N" + std::to_string(N) +
                                 (a_t ? " Aᵀ" : "") + (b_t ? " Bᵀ" : "");
        auto c = torch::full({M, N}, 7.0f);  // overwritten, not added to
        gemm_out(c, av, bv);
        expect_close(c, expected, what);
        auto acc = c0.clone();
        gemm_out(acc, av, bv, /*accumulate=*/true);
        expect_close(acc, expected + c0.to(torch::kDouble), what + " accumulate");
      }
  }
}

TEST(Gemm, NonContiguousOperandIsCopiedNotMisread) {
  torch::manual_seed(6);
  const auto big = torch::randn({40, 60});
  const auto a = big.slice(1, 0, 60, 2);  // [40, 30], column stride 2
  const auto b = torch::randn({30, 20});
  auto c = torch::empty({40, 20});
  gemm_out(c, a, b);
  expect_close(c, a.to(torch::kDouble).mm(b.to(torch::kDouble)), "strided A");
}

TEST(Gemm, LinearAndItsGradientsMatchTorch) {
  torch::manual_seed(7);
  for (bool with_bias : {false, true}) {
    auto x = torch::randn({3, 17, 24}, torch::requires_grad());
    auto w = torch::randn({40, 24}, torch::requires_grad());
    auto b = with_bias ? torch::randn({40}, torch::requires_grad()) : torch::Tensor();
    auto y = gemm_linear(x, w, b);
    if (uses_openblas()) EXPECT_NE(std::string(y.grad_fn()->name()).find("LinearFunction"), std::string::npos);
    auto g = torch::randn({3, 17, 40});
    y.backward(g);
    auto x2 = x.detach().to(torch::kDouble).requires_grad_(true),
         w2 = w.detach().to(torch::kDouble).requires_grad_(true);
    auto b2 = with_bias ? b.detach().to(torch::kDouble).requires_grad_(true) : torch::Tensor();
    auto y2 = torch::nn::functional::linear(x2, w2, b2);
    y2.backward(g.to(torch::kDouble));
    expect_close(y.detach(), y2.detach(), "y");
    expect_close(x.grad(), x2.grad(), "dx");
    expect_close(w.grad(), w2.grad(), "dweight");
    if (with_bias) expect_close(b.grad(), b2.grad(), "dbias");
  }
}

// One row with a bias (a decoding step): the product goes to a new tensor, never into the bias.
TEST(Gemm, OneRowLeavesTheBiasAlone) {
  torch::manual_seed(10);
  const auto x = torch::randn({1, 1, 24}), w = torch::randn({40, 24}), b = torch::randn({40});
  const auto b_before = b.clone();
  const auto first = gemm_linear(x, w, b);
  EXPECT_TRUE(torch::equal(b, b_before));
  EXPECT_TRUE(torch::equal(gemm_linear(x, w, b), first));
  expect_close(first, torch::nn::functional::linear(x.to(torch::kDouble), w.to(torch::kDouble), b.to(torch::kDouble)),
               "y");
}

TEST(Gemm, LinearIsRepeatableBitForBit) {
  torch::manual_seed(8);
  const auto x = torch::randn({512, 256}), w = torch::randn({768, 256});
  EXPECT_TRUE(torch::equal(gemm_linear(x, w), gemm_linear(x, w)));
}

TEST(Gemm, DoubleBackwardUsesDifferentiableFormulas) {
  torch::manual_seed(9);
  auto x = torch::randn({5, 6}, torch::requires_grad());
  auto w = torch::randn({4, 6}, torch::requires_grad());
  auto y = gemm_linear(x, w).pow(2).sum();
  auto [dx] = std::make_tuple(torch::autograd::grad({y}, {x}, {}, true, true)[0]);
  dx.sum().backward();
  auto x2 = x.detach().to(torch::kDouble).requires_grad_(true), w2 = w.detach().to(torch::kDouble).requires_grad_(true);
  auto y2 = torch::nn::functional::linear(x2, w2).pow(2).sum();
  auto dx2 = torch::autograd::grad({y2}, {x2}, {}, true, true)[0];
  dx2.sum().backward();
  expect_close(dx.detach(), dx2.detach(), "dx");
  expect_close(w.grad(), w2.grad(), "d(sum dx)/dweight");
}

}  // namespace
}  // namespace ssmax
