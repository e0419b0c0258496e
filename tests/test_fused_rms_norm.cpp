// Pins the fused RMSNorm to its formula, y = x · rsqrt(mean(x²) + eps) · weight, and its gradients: against the
// composite ATen expression in double precision, bit for bit across thread counts, and on every fallback path.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ostream>
#include <string>
#include <vector>

#include "kernels/fused_kernels.h"
#include "kernels/fused_rms_norm.h"

namespace ssmax {
namespace {

struct Outputs {
  torch::Tensor y, dx, dw;
};

torch::Tensor composite(const torch::Tensor& x, const torch::Tensor& w, double eps) {
  return x * torch::rsqrt(x.pow(2).mean(-1, /*keepdim=*/true) + eps) * w;
}

// y, dx and dweight of fn at fresh leaves holding x's and w's values (x's strides kept), backpropagating g.
template <typename Fn>
Outputs run(Fn fn, const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& g, double eps) {
  auto xl = x.detach().clone().requires_grad_(true);
  auto wl = w.detach().clone().requires_grad_(true);
  auto y = fn(xl, wl, eps);
  y.backward(g);
  return {y.detach(), xl.grad(), wl.grad()};
}

Outputs fused(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& g, double eps) {
  return run(fused_rms_norm, x, w, g, eps);
}

// The independent reference: the composite expression and ATen's autograd, in double.
Outputs reference(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& g, double eps) {
  return run(composite, x.to(torch::kDouble), w.to(torch::kDouble), g.to(torch::kDouble), eps);
}

std::string grad_fn_name(const torch::Tensor& y) { return y.grad_fn() ? y.grad_fn()->name() : "(no grad_fn)"; }

bool took_fast_path(const torch::Tensor& y) { return grad_fn_name(y).find("FusedRmsNorm") != std::string::npos; }

// Measured errors stay below ~3e-7 of each tensor's largest magnitude (float32 rounding plus row sums of up to a few
// hundred terms); 1e-5 leaves ~30x headroom, while a wrong formula (eps, r², mean vs sum) errs by O(1).
void expect_close(const torch::Tensor& actual, const torch::Tensor& expected, const char* what, double rtol = 1e-5) {
  ASSERT_TRUE(actual.defined()) << what;
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what;
  const auto a = actual.to(torch::kDouble);
  const double scale = expected.abs().max().item<double>();
  EXPECT_TRUE(torch::allclose(a, expected, rtol, rtol * scale))
      << what << ": max abs diff " << (a - expected).abs().max().item<double>() << " at scale " << scale;
}

// Restores the intra-op thread count a test changes, even when an assertion returns early.
struct ThreadCountGuard {
  int previous = at::get_num_threads();
  ~ThreadCountGuard() { at::set_num_threads(previous); }
};

struct Case {
  std::vector<int64_t> shape;
  double eps;
  bool transposed;  // x's last dimension not contiguous in memory
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << "shape " << c.shape << " eps " << c.eps << (c.transposed ? " transposed" : "");
}

class FusedRmsNormParity : public ::testing::TestWithParam<Case> {};

TEST_P(FusedRmsNormParity, MatchesDoubleReferenceForwardAndGradients) {
  const Case& c = GetParam();
  torch::manual_seed(11);
  auto x = torch::randn(c.shape) + 0.5;  // an offset, so Σ gw·x does not average out
  if (c.transposed) x = x.transpose(-1, -2).contiguous().transpose(-1, -2);
  auto w = 1 + 0.2 * torch::randn({c.shape.back()});
  auto g = torch::randn(c.shape);
  const auto expected = reference(x, w, g, c.eps);
  const auto actual = fused(x, w, g, c.eps);
  auto probe = fused_rms_norm(x.clone().requires_grad_(true), w, c.eps);
  EXPECT_TRUE(took_fast_path(probe)) << grad_fn_name(probe);
  expect_close(actual.y, expected.y, "y");
  expect_close(actual.dx, expected.dx, "dx");
  expect_close(actual.dw, expected.dw, "dweight");
}

INSTANTIATE_TEST_SUITE_P(FusedRmsNorm, FusedRmsNormParity,
                         ::testing::Values(Case{{3, 5, 37}, 1e-5, false},  // [B, T, C]; C leaves a tail after the lanes
                                           Case{{300, 64}, 1e-5, false},   // 9 full dweight chunks and a partial one
                                           Case{{2, 70, 48}, 0.5, false},  // eps large enough to matter
                                           Case{{40, 24}, 1e-5, true},     // non-contiguous x
                                           Case{{1, 1, 5}, 1e-5, false}));  // one row, shorter than the lanes

// The kernels' "same bits for any thread count" tests mean something only if the library's parallel loops really use
// several threads (they ran on one while the library was compiled without OpenMP).
TEST(FusedKernels, LibraryParallelLoopsReachEveryThread) {
  ThreadCountGuard guard;
  at::set_num_threads(2);
  EXPECT_EQ(intra_op_threads_reached(64), 2);
  at::set_num_threads(1);
  EXPECT_EQ(intra_op_threads_reached(64), 1);
}

TEST(FusedRmsNorm, BitIdenticalForAnyThreadCountAndRun) {
  ThreadCountGuard guard;
  torch::manual_seed(3);
  // 1000 rows of 96: enough for both the row loop and the dweight chunks to split over two threads.
  auto x = torch::randn({1000, 96}), w = 1 + 0.2 * torch::randn({96}), g = torch::randn({1000, 96});
  // On random data a change of dweight's grouping may not reach its bits (chunks add in double). Rows 0 and 700 add
  // ±1e20·(the same terms), which swamp every row summed into the same partial between them: what survives is the rows
  // after 700 in 700's partial and the later ones, so any thread-dependent grouping changes the result.
  x[700] = x[0];
  g[0] *= 1e20;
  g[700] = -g[0];
  at::set_num_threads(1);
  const auto one = fused(x, w, g, 1e-5);
  at::set_num_threads(2);
  const auto two = fused(x, w, g, 1e-5);
  const auto again = fused(x, w, g, 1e-5);
  for (const auto* other : {&two, &again}) {
    EXPECT_TRUE(torch::equal(one.y, other->y));
    EXPECT_TRUE(torch::equal(one.dx, other->dx));
    EXPECT_TRUE(torch::equal(one.dw, other->dw));
  }
}

TEST(FusedRmsNorm, ComputesEachGradientAlone) {
  torch::manual_seed(5);
  auto x = torch::randn({70, 40}), w = 1 + 0.2 * torch::randn({40}), g = torch::randn({70, 40});
  const auto expected = reference(x, w, g, 1e-5);

  auto x_only = x.clone().requires_grad_(true);
  fused_rms_norm(x_only, w, 1e-5).backward(g);
  expect_close(x_only.grad(), expected.dx, "dx without dweight");

  auto w_only = w.clone().requires_grad_(true);
  auto y = fused_rms_norm(x, w_only, 1e-5);
  EXPECT_TRUE(took_fast_path(y)) << grad_fn_name(y);
  y.backward(g);
  expect_close(w_only.grad(), expected.dw, "dweight without dx");
}

TEST(FusedRmsNorm, ForwardWorksWithoutGrad) {
  torch::manual_seed(6);
  auto x = torch::randn({2, 9, 33}).requires_grad_(true), w = torch::randn({33}).requires_grad_(true);
  torch::Tensor y;
  {
    torch::NoGradGuard no_grad;
    y = fused_rms_norm(x, w, 1e-5);
  }
  EXPECT_FALSE(y.requires_grad());
  EXPECT_FALSE(y.grad_fn());
  expect_close(y, composite(x.detach().to(torch::kDouble), w.detach().to(torch::kDouble), 1e-5), "y");
}

// create_graph: the backward must itself be differentiable (e.g. for gradient penalties).
TEST(FusedRmsNorm, DoubleBackwardMatchesReference) {
  torch::manual_seed(8);
  auto x = torch::randn({6, 19}) + 0.3, w = 1 + 0.2 * torch::randn({19}), g = torch::randn({6, 19});
  auto hx = torch::randn({6, 19}), hw = torch::randn({19});
  auto second = [&](const torch::Tensor& x0, const torch::Tensor& w0, auto fn) {
    auto xl = x0.clone().requires_grad_(true), wl = w0.clone().requires_grad_(true);
    auto first = torch::autograd::grad({fn(xl, wl, 1e-5)}, {xl, wl}, {g.to(x0.dtype())}, true, true);
    auto s = (first[0] * hx.to(x0.dtype())).sum() + (first[1] * hw.to(x0.dtype())).sum();
    auto grads = torch::autograd::grad({s}, {xl, wl});
    return std::vector<torch::Tensor>{first[0].detach(), first[1].detach(), grads[0], grads[1]};
  };
  const auto actual = second(x, w, fused_rms_norm);
  const auto expected = second(x.to(torch::kDouble), w.to(torch::kDouble), composite);
  const char* names[] = {"dx", "dweight", "d(dx·hx + dw·hw)/dx", "d(dx·hx + dw·hw)/dweight"};
  for (size_t i = 0; i < actual.size(); ++i) expect_close(actual[i], expected[i], names[i]);
}

// Double (like bf16, half and CUDA) goes through the composite expression; its gradients against central differences.
TEST(FusedRmsNorm, FallbackPathMatchesFiniteDifferences) {
  torch::manual_seed(9);
  auto dbl = torch::TensorOptions().dtype(torch::kDouble);
  auto x = torch::randn({2, 3, 5}, dbl), w = 1 + 0.2 * torch::randn({5}, dbl), g = torch::randn({2, 3, 5}, dbl);
  const double eps = 1e-3;
  const auto analytic = fused(x, w, g, eps);
  auto y = fused_rms_norm(x.clone().requires_grad_(true), w, eps);
  EXPECT_FALSE(took_fast_path(y)) << grad_fn_name(y);
  EXPECT_TRUE(torch::equal(analytic.y, composite(x, w, eps)));

  auto loss = [&](const torch::Tensor& xv, const torch::Tensor& wv) {
    return (fused_rms_norm(xv, wv, eps) * g).sum().item<double>();
  };
  const double h = 1e-6;
  auto numeric = [&](const torch::Tensor& param, bool is_x) {
    auto out = torch::zeros_like(param);
    auto flat = out.view({-1});
    for (int64_t i = 0; i < param.numel(); ++i) {
      auto plus = param.clone(), minus = param.clone();
      plus.view({-1})[i] += h;
      minus.view({-1})[i] -= h;
      const double lp = is_x ? loss(plus, w) : loss(x, plus), lm = is_x ? loss(minus, w) : loss(x, minus);
      flat[i] = (lp - lm) / (2 * h);
    }
    return out;
  };
  expect_close(analytic.dx, numeric(x, true), "dx", 1e-6);
  expect_close(analytic.dw, numeric(w, false), "dweight", 1e-6);
}

// On CUDA the composite expression runs; it must agree with the CPU kernel.
TEST(FusedRmsNorm, CudaFallbackMatchesCpuKernel) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  torch::manual_seed(10);
  auto x = torch::randn({4, 16, 40}), w = 1 + 0.2 * torch::randn({40}), g = torch::randn({4, 16, 40});
  const auto cpu = fused(x, w, g, 1e-5);
  const auto cuda = fused(x.cuda(), w.cuda(), g.cuda(), 1e-5);
  expect_close(cuda.y.cpu(), cpu.y.to(torch::kDouble), "y");
  expect_close(cuda.dx.cpu(), cpu.dx.to(torch::kDouble), "dx");
  expect_close(cuda.dw.cpu(), cpu.dw.to(torch::kDouble), "dweight");
}

}  // namespace
}  // namespace ssmax
