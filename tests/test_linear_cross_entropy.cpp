// Pins the fused LM head + loss to cross_entropy(x · Wᵀ, targets): loss and gradients against the composite in
// double precision, with several chunks and a partial last one; bit for bit across thread counts; no-grad, frozen
// weight, scaled and repeated backward; bad targets; the composite fallback; the chunked form of any device and
// dtype (float32 against double; bf16 under CPU autocast against the composite under autocast).
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

#include "kernels/linear_cross_entropy.h"

namespace ssmax {
namespace {

namespace F = torch::nn::functional;

struct Outputs {
  torch::Tensor loss, dx, dw;
};

torch::Tensor composite(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& t, int64_t) {
  return F::cross_entropy(F::linear(x, w), t);
}

torch::Tensor fused_loss(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& t, int64_t chunk_rows) {
  return linear_cross_entropy(x, w, t, chunk_rows);
}

// Loss, dx and dweight of fn at fresh leaves holding x's and w's values, backpropagating scale·loss.
template <typename Fn>
Outputs run(Fn fn, const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& t, int64_t chunk_rows = 0,
            double scale = 1.0) {
  auto xl = x.detach().clone().requires_grad_(true);
  auto wl = w.detach().clone().requires_grad_(true);
  auto loss = fn(xl, wl, t, chunk_rows);
  (scale == 1.0 ? loss : loss * scale).backward();
  return {loss.detach(), xl.grad(), wl.grad()};
}

Outputs fused(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& t, int64_t chunk_rows = 0,
              double scale = 1.0) {
  return run(fused_loss, x, w, t, chunk_rows, scale);
}

Outputs reference(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& t) {
  return run(composite, x.to(torch::kDouble), w.to(torch::kDouble), t);
}

std::string grad_fn_name(const torch::Tensor& y) { return y.grad_fn() ? y.grad_fn()->name() : "(no grad_fn)"; }

// Measured errors are ~1e-6 of each tensor's largest magnitude (float32 logits and sums over C and N terms); a wrong
// formula (missing 1/N, softmax without the one-hot, a dropped chunk) errs by O(1) or at least 1/N ≈ 3e-3.
void expect_close(const torch::Tensor& actual, const torch::Tensor& expected, const char* what, double rtol = 1e-5) {
  ASSERT_TRUE(actual.defined()) << what;
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what;
  const auto a = actual.to(torch::kDouble), e = expected.to(torch::kDouble);
  const double scale = e.abs().max().item<double>();
  EXPECT_TRUE(torch::allclose(a, e, rtol, rtol * scale))
      << what << ": max abs diff " << (a - e).abs().max().item<double>() << " at scale " << scale;
}

void expect_equal(const Outputs& a, const Outputs& b) {
  EXPECT_TRUE(torch::equal(a.loss, b.loss)) << a.loss.item<double>() << " vs " << b.loss.item<double>();
  EXPECT_TRUE(torch::equal(a.dx, b.dx));
  EXPECT_TRUE(torch::equal(a.dw, b.dw));
}

struct ThreadCountGuard {
  int previous = at::get_num_threads();
  ~ThreadCountGuard() { at::set_num_threads(previous); }
};

// Logits of a few units (x ~ N(0,1), W ~ N(0, 0.5²), C = 40 → std ≈ 3): a peaked softmax, exercising the max shift.
struct Problem {
  torch::Tensor x, w, t;
};
Problem problem(int64_t N, int64_t C, int64_t V, uint64_t seed) {
  torch::manual_seed(seed);
  return {torch::randn({N, C}), 0.5 * torch::randn({V, C}), torch::randint(V, {N}, torch::kLong)};
}

TEST(LinearCrossEntropy, MatchesDoubleReferenceWithPartialChunks) {
  // V = 1001: rows leave a tail after the 16 lanes; 300 rows in chunks of 64 = 4 full chunks and one of 44.
  const auto p = problem(300, 40, 1001, 5);
  const auto expected = reference(p.x, p.w, p.t);
  for (int64_t chunk_rows : {64, 7, 0, 1000}) {  // forced, tiny, automatic, larger than N
    SCOPED_TRACE("chunk_rows " + std::to_string(chunk_rows));
    const auto actual = fused(p.x, p.w, p.t, chunk_rows);
    expect_close(actual.loss, expected.loss, "loss", 1e-6);
    expect_close(actual.dx, expected.dx, "dx");
    expect_close(actual.dw, expected.dw, "dweight");
  }
  auto probe = linear_cross_entropy(p.x.clone().requires_grad_(true), p.w, p.t);
  EXPECT_NE(grad_fn_name(probe).find("LinearCrossEntropy"), std::string::npos) << grad_fn_name(probe);
}

TEST(LinearCrossEntropy, ExtremeLogitsStayFinite) {
  // Logits in the hundreds: e^l overflows float unless the max is subtracted; most classes underflow to 0.
  // Float32 logits that large carry rounding of ~1e-5, so the gradients err ~6e-6 here (the composite's too).
  auto p = problem(50, 16, 300, 9);
  p.w = p.w * 60;
  const auto expected = reference(p.x, p.w, p.t);
  const auto actual = fused(p.x, p.w, p.t, 16);
  expect_close(actual.loss, expected.loss, "loss", 1e-6);
  expect_close(actual.dx, expected.dx, "dx", 5e-5);
  expect_close(actual.dw, expected.dw, "dweight", 5e-5);
  EXPECT_TRUE(torch::isfinite(actual.dx).all().item<bool>());
}

TEST(LinearCrossEntropy, TiedWeightGetsTheSumOfBothUses) {
  // GPT-2 ties the head to the token embedding: the weight's gradient adds the head's to the embedding's.
  const auto p = problem(64, 16, 203, 12);
  const auto idx = torch::randint(203, {64}, torch::kLong);
  auto weight_grad = [&](auto fn, const torch::Tensor& w0) {
    auto w = w0.clone().requires_grad_(true);
    fn(torch::tanh(F::embedding(idx, w)), w, p.t, 0).backward();
    return w.grad();
  };
  expect_close(weight_grad(fused_loss, p.w), weight_grad(composite, p.w.to(torch::kDouble)), "dweight");
}

// Bit for bit from run to run at a given thread count (the project's determinism: threads are a config value). Across
// thread counts the row pass still sums in a fixed order, but OpenBLAS's products (kernels/gemm.h) may round
// differently when split over another number of threads, so there only closeness is asked.
TEST(LinearCrossEntropy, BitIdenticalFromRunToRunAtEachThreadCount) {
  ThreadCountGuard guard;
  // 700 rows of 2000 classes in chunks of 300: the row loop splits over both threads in every chunk.
  const auto p = problem(700, 64, 2000, 3);
  at::set_num_threads(1);
  const auto one = fused(p.x, p.w, p.t, 300);
  expect_equal(one, fused(p.x, p.w, p.t, 300));
  at::set_num_threads(2);
  const auto two = fused(p.x, p.w, p.t, 300);
  expect_equal(two, fused(p.x, p.w, p.t, 300));
  expect_close(two.loss, one.loss, "loss, 2 vs 1 threads", 1e-6);
  expect_close(two.dx, one.dx, "dx, 2 vs 1 threads", 1e-6);
  expect_close(two.dw, one.dw, "dweight, 2 vs 1 threads", 1e-6);
}

TEST(LinearCrossEntropy, NoGradForwardEqualsGradForwardLoss) {
  const auto p = problem(130, 24, 517, 4);
  const auto with_grad = fused(p.x, p.w, p.t, 32);
  torch::NoGradGuard no_grad;
  const auto loss = linear_cross_entropy(p.x, p.w, p.t, 32);
  EXPECT_FALSE(loss.requires_grad());
  EXPECT_TRUE(torch::equal(loss, with_grad.loss));
}

TEST(LinearCrossEntropy, ComputesOnlyTheGradientsAsked) {
  const auto p = problem(90, 24, 333, 6);
  const auto both = fused(p.x, p.w, p.t, 32);
  auto x = p.x.clone().requires_grad_(true);  // weight frozen
  linear_cross_entropy(x, p.w, p.t, 32).backward();
  EXPECT_TRUE(torch::equal(x.grad(), both.dx));
  auto w = p.w.clone().requires_grad_(true);  // x a constant
  linear_cross_entropy(p.x, w, p.t, 32).backward();
  EXPECT_TRUE(torch::equal(w.grad(), both.dw));
  EXPECT_FALSE(linear_cross_entropy(p.x, p.w, p.t).requires_grad());
}

TEST(LinearCrossEntropy, ScalesGradientsByTheUpstreamGradient) {
  const auto p = problem(100, 24, 257, 8);
  const auto unit = fused(p.x, p.w, p.t, 32);
  const auto quarter = fused(p.x, p.w, p.t, 32, 0.25);    // loss / grad_accum_steps
  EXPECT_TRUE(torch::equal(quarter.dx, unit.dx * 0.25));  // a power of two: exact
  EXPECT_TRUE(torch::equal(quarter.dw, unit.dw * 0.25));

  // A kept graph must survive its first backward: the saved gradients are not scaled in place.
  auto x = p.x.clone().requires_grad_(true), w = p.w.clone().requires_grad_(true);
  auto loss = linear_cross_entropy(x, w, p.t, 32) * 3;
  loss.backward({}, /*retain_graph=*/true);
  loss.backward();
  expect_close(x.grad(), unit.dx * 6, "dx after two backwards");
  expect_close(w.grad(), unit.dw * 6, "dweight after two backwards");
}

TEST(LinearCrossEntropy, RejectsOutOfRangeTargetsAndBadShapes) {
  auto p = problem(20, 8, 50, 2);
  for (int64_t bad : {50, -1, -100}) {  // -100 included: no ignore_index here
    auto t = p.t.clone();
    t[13] = bad;
    try {
      linear_cross_entropy(p.x, p.w, t);
      ADD_FAILURE() << "target " << bad << " accepted";
    } catch (const c10::Error& e) {
      EXPECT_NE(std::string(e.what()).find("target " + std::to_string(bad)), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(linear_cross_entropy(p.x, p.w.narrow(1, 0, 7), p.t), c10::Error);
  EXPECT_THROW(linear_cross_entropy(p.x, p.w, p.t.narrow(0, 0, 19)), c10::Error);
  EXPECT_THROW(linear_cross_entropy(p.x, p.w, p.t.to(torch::kInt)), c10::Error);
}

TEST(LinearCrossEntropy, FallsBackToTheCompositeForOtherDtypes) {
  const auto p = problem(40, 12, 77, 1);
  const auto x = p.x.to(torch::kDouble), w = p.w.to(torch::kDouble);
  const auto actual = run(fused_loss, x, w, p.t);
  const auto expected = reference(p.x, p.w, p.t);
  expect_equal(actual, expected);
  auto probe = linear_cross_entropy(x.clone().requires_grad_(true), w, p.t);
  EXPECT_EQ(grad_fn_name(probe).find("LinearCrossEntropy"), std::string::npos) << grad_fn_name(probe);
}

// CPU autocast (bf16): the chunked form in bf16 — close to the composite under autocast (the same bf16 products,
// float32 softmax), not the float32 kernel.
struct CpuAutocast {
  bool was_enabled = at::autocast::is_autocast_enabled(at::kCPU);
  at::ScalarType previous_dtype = at::autocast::get_autocast_dtype(at::kCPU);
  CpuAutocast() {
    at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
    at::autocast::set_autocast_enabled(at::kCPU, true);
  }
  ~CpuAutocast() {
    at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(at::kCPU, was_enabled);
    at::autocast::set_autocast_dtype(at::kCPU, previous_dtype);
  }
};

TEST(LinearCrossEntropy, UnderCpuAutocastRunsTheChunkedFormInBf16) {
  const auto p = problem(300, 40, 1001, 3);
  Outputs actual, expected;
  std::string name;
  {
    CpuAutocast autocast;
    actual = run(fused_loss, p.x, p.w, p.t, 64);
    expected = run(composite, p.x, p.w, p.t);
    name = grad_fn_name(linear_cross_entropy(p.x.clone().requires_grad_(true), p.w, p.t));
  }
  EXPECT_NE(name.find("ChunkedLinearCrossEntropy"), std::string::npos) << name;
  EXPECT_EQ(actual.loss.scalar_type(), torch::kFloat);
  // bf16 products (8 mantissa bits) on both sides, summed in other orders: agreement to ~1e-2 of the scale; a
  // wrong formula errs by O(1).
  expect_close(actual.loss, expected.loss, "loss", 1e-2);
  expect_close(actual.dx, expected.dx, "dx", 2e-2);
  expect_close(actual.dw, expected.dw, "dweight", 2e-2);
  const auto float32 = fused(p.x, p.w, p.t);
  EXPECT_FALSE(torch::equal(actual.loss, float32.loss));  // the bf16 head, not the float32 kernel
  expect_close(actual.loss, float32.loss, "loss against float32", 1e-2);
}

TEST(ChunkedLinearCrossEntropy, Float32MatchesDoubleReferenceWithPartialChunks) {
  const auto p = problem(300, 40, 1001, 5);
  const auto expected = reference(p.x, p.w, p.t);
  auto chunked = [](const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& t, int64_t rows) {
    return chunked_linear_cross_entropy(x, w, t, torch::kFloat, rows);
  };
  for (int64_t chunk_rows : {64, 7, 0, 1000}) {
    SCOPED_TRACE("chunk_rows " + std::to_string(chunk_rows));
    const auto actual = run(chunked, p.x, p.w, p.t, chunk_rows);
    expect_close(actual.loss, expected.loss, "loss", 1e-6);
    expect_close(actual.dx, expected.dx, "dx");
    expect_close(actual.dw, expected.dw, "dweight");
  }
  // Scaled and partial gradients, as the float32 kernel.
  const auto once = run(chunked, p.x, p.w, p.t, 64), thrice = run(chunked, p.x, p.w, p.t, 64, 3.0);
  expect_close(thrice.dx, 3 * once.dx, "dx × 3", 1e-6);
  expect_close(thrice.dw, 3 * once.dw, "dweight × 3", 1e-6);
  auto x = p.x.clone().requires_grad_(true);
  chunked_linear_cross_entropy(x, p.w, p.t, torch::kFloat, 64).backward();  // the weight is frozen
  expect_close(x.grad(), expected.dx, "dx with a frozen weight");
  torch::NoGradGuard no_grad;
  expect_close(chunked_linear_cross_entropy(p.x, p.w, p.t, torch::kFloat), expected.loss, "no-grad loss", 1e-6);
}

// Vocabulary padding (model/gpt.h): with `classes` < the rows of W, every path equals the loss over the first
// `classes` rows alone, and the padding rows of dW are exactly zero however large their logits would be.
TEST(LinearCrossEntropy, PaddingRowsNeverReachTheLoss) {
  const auto p = problem(300, 40, 1001, 7);
  auto w = torch::cat({p.w, 10 * torch::randn({23, 40})});  // 1024 rows; large padding logits would dominate
  const auto expected = reference(p.x, p.w, p.t);
  auto check = [&](const char* path, auto fn) {
    SCOPED_TRACE(path);
    const auto actual = run(fn, p.x, w, p.t, 64);
    expect_close(actual.loss, expected.loss, "loss", 1e-6);
    expect_close(actual.dx, expected.dx, "dx");
    expect_close(actual.dw.narrow(0, 0, 1001), expected.dw, "dweight");
    EXPECT_TRUE(torch::equal(actual.dw.narrow(0, 1001, 23), torch::zeros({23, 40})));
  };
  check("fused", [](const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& t, int64_t rows) {
    return linear_cross_entropy(x, w, t, rows, 1001);
  });
  check("chunked", [](const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& t, int64_t rows) {
    return chunked_linear_cross_entropy(x, w, t, torch::kFloat, rows, 1001);
  });
  const auto in_double = run(
      [](const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& t, int64_t rows) {
        return linear_cross_entropy(x, w, t, rows, 1001);  // double: the composite path
      },
      p.x.to(torch::kDouble), w.to(torch::kDouble), p.t);
  expect_close(in_double.loss, expected.loss, "composite loss", 1e-12);
  EXPECT_TRUE(torch::equal(in_double.dw.narrow(0, 1001, 23), torch::zeros({23, 40}, torch::kDouble)));
  auto t = p.t.clone();
  t[3] = 1001;  // a padding row is not a class
  EXPECT_THROW(linear_cross_entropy(p.x, w, t, 0, 1001), c10::Error);
}

// On a GPU machine (scripts/gpu_check.sh runs every test named *Cuda*): the chunked form on CUDA, float32 (TF32
// off) and bf16, against the double reference on the CPU; and the switch that routes training's loss to it.
TEST(ChunkedLinearCrossEntropy, CudaMatchesTheCpuReference) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const auto p = problem(3000, 64, 5003, 8);
  const auto expected = reference(p.x, p.w, p.t);
  const auto cuda = torch::Device(torch::kCUDA);
  for (const auto dtype : {torch::kFloat, torch::kBFloat16}) {
    SCOPED_TRACE(std::string("dtype ") + c10::toString(dtype));
    auto chunked = [dtype](const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& t, int64_t rows) {
      return chunked_linear_cross_entropy(x, w, t, dtype, rows);
    };
    const auto actual = run(chunked, p.x.to(cuda), p.w.to(cuda), p.t.to(cuda), 512);
    const double rtol = dtype == torch::kFloat ? 1e-5 : 2e-2;
    expect_close(actual.loss.cpu(), expected.loss, "loss", rtol);
    expect_close(actual.dx.cpu(), expected.dx, "dx", rtol);
    expect_close(actual.dw.cpu(), expected.dw, "dweight", rtol);
  }
  use_chunked_loss_on_cuda(true);
  const auto routed = linear_cross_entropy(p.x.to(cuda).requires_grad_(true), p.w.to(cuda), p.t.to(cuda));
  use_chunked_loss_on_cuda(false);
  EXPECT_NE(grad_fn_name(routed).find("ChunkedLinearCrossEntropy"), std::string::npos) << grad_fn_name(routed);
}

}  // namespace
}  // namespace ssmax
