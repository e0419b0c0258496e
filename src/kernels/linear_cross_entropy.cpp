#include "kernels/linear_cross_entropy.h"

#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/graph_task.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/fused_kernels.h"
#include "kernels/gemm.h"

namespace ssmax {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// Independent accumulators per reduction: GCC may not reorder one float sum, but vectorises the inner loop over
// these lanes (kept a loop by the pragma: fully unrolled, it is not vectorised), and the adds overlap.
constexpr int kLanes = 16;

float row_max(const float* p, int64_t n) {
  float acc[kLanes];
  std::fill(acc, acc + kLanes, -std::numeric_limits<float>::infinity());
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
#pragma GCC unroll 1
    for (int k = 0; k < kLanes; ++k) acc[k] = p[i + k] > acc[k] ? p[i + k] : acc[k];
  }
  for (; i < n; ++i) acc[0] = p[i] > acc[0] ? p[i] : acc[0];
  return *std::max_element(acc, acc + kLanes);
}

template <typename To, typename From>
inline To bit_cast(From from) {
  To to;
  std::memcpy(&to, &from, sizeof to);
  return to;
}

// e^x for x ≤ 0 (a logit minus its row's max). std::exp is a scalar call, 3x slower than this vectorised form of
// Cephes' expf: x = n·ln2 + r, a degree-6 polynomial for e^r, 2ⁿ written into the exponent bits. At most 1.4 ulp
// on [-87, 0]; below -87.3 (where 2ⁿ would leave the normal range) it gives 0, true value < 1e-38. NaN stays NaN.
// The underflow is masked with bits, not a branch: a branch lets GCC fold the clamped case and then refuse to
// vectorise (the polynomial "could trap" if run unconditionally).
inline float exp_nonpositive(float x) {
  const float t = x * 1.44269504f + 12582912.0f;  // adding 1.5·2²³ rounds x·log₂e to an integer n in t's low bits
  const float n = t - 12582912.0f;
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;  // ln 2 in two parts: n·(high part) is exact
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const float scale = bit_cast<float>((bit_cast<uint32_t>(t) - 0x4B400000u + 127u) << 23);  // t's bits: 1.5·2²³'s + n
  return bit_cast<float>(bit_cast<uint32_t>(p * scale) & -static_cast<uint32_t>(!(x < -87.3f)));
}

// Σ e^(p[i] − m); with kStore, p[i] becomes e^(p[i] − m). Float sums, like ATen's softmax: over V/16 terms each.
template <bool kStore>
double sum_exp(float* p, int64_t n, float m) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
#pragma GCC unroll 1
    for (int k = 0; k < kLanes; ++k) {
      const float e = exp_nonpositive(p[i + k] - m);
      if (kStore) p[i + k] = e;
      acc[k] += e;
    }
  }
  for (; i < n; ++i) {
    const float e = exp_nonpositive(p[i] - m);
    if (kStore) p[i] = e;
    acc[0] += e;
  }
  double sum = 0;
  for (float a : acc) sum += a;
  return sum;
}

// One row of logits → its loss lse − l[target]; with kGrad the row becomes the loss gradient (softmax − onehot)/N.
template <bool kGrad>
double row_loss(float* p, int64_t V, int64_t target, double inv_n) {
  const float m = row_max(p, V);
  const float target_logit = p[target];
  const double sum = sum_exp<kGrad>(p, V, m);
  if (kGrad) {
    const float scale = static_cast<float>(inv_n / sum);
    for (int64_t i = 0; i < V; ++i) p[i] *= scale;
    p[target] -= static_cast<float>(inv_n);
  }
  return (static_cast<double>(m) - target_logit) + std::log(sum);
}

// Rows per chunk: logits of about 8 MB (L3 is 32 MB, L2 1 MB per core), so the softmax pass and the two gradient
// matmuls read back what the logits matmul just wrote from cache; but at least 256 rows, because every matmul
// call packs all of W (V×C) again, a cost each chunk's rows must amortise: measured on GPT-2's head (V = 50257,
// C = 768), 64 rows are 25 % slower than 256, and 256 to N rows are alike; on V = 4096, 256 to 1024 rows are alike.
int64_t auto_chunk_rows(int64_t N, int64_t V) {  // linear_cross_entropy_chunk_rows
  constexpr int64_t kChunkBytes = 8 << 20, kMinRows = 256;
  return std::min(N, std::max(kMinRows, kChunkBytes / (V * static_cast<int64_t>(sizeof(float)))));
}

std::atomic<bool>& chunked_loss_on_cuda() {
  static std::atomic<bool> on{false};
  return on;
}

class LinearCrossEntropy : public torch::autograd::Function<LinearCrossEntropy> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& x_in, const Tensor& weight_in, const Tensor& targets_in,
                        int64_t chunk_rows, int64_t classes, bool need_dx, bool need_dw) {
    const Tensor x = x_in.contiguous(), weight = weight_in.contiguous(), targets = targets_in.contiguous();
    // Rows of W (stride of a logits row) and, of those, the classes; the padding's logits stay out of the softmax
    // and their gradient is zeroed, so dW's padding rows are zero.
    const int64_t N = x.size(0), C = x.size(1), rows_of_w = weight.size(0), V = classes;
    const int64_t* target = targets.data_ptr<int64_t>();
    for (int64_t i = 0; i < N; ++i)
      TORCH_CHECK(target[i] >= 0 && target[i] < V, "linear_cross_entropy: target ", target[i], " (row ", i,
                  ") is outside [0, ", V, ")");

    const int64_t rows = chunk_rows > 0 ? std::min(chunk_rows, N) : auto_chunk_rows(N, rows_of_w);
    const bool grads = need_dx || need_dw;
    const Tensor logits = at::empty({rows, rows_of_w}, x.options());
    Tensor dx = need_dx ? at::empty({N, C}, x.options()) : Tensor();
    Tensor dw = need_dw ? at::empty({rows_of_w, C}, x.options()) : Tensor();
    const double inv_n = 1.0 / static_cast<double>(N);
    // Per-row losses summed in row order at the end: the same value however the rows are split over threads.
    std::vector<double> losses(N);
    const int64_t grain = std::max<int64_t>(1, 16384 / V);  // ≥ 16K logits per task: small V is not worth a split
    for (int64_t start = 0; start < N; start += rows) {
      const int64_t n = std::min(rows, N - start);
      const Tensor x_c = x.narrow(0, start, n);
      Tensor l_c = logits.narrow(0, 0, n);
      gemm_out(l_c, x_c, weight.t());
      float* l = l_c.data_ptr<float>();
      at::parallel_for(0, n, grain, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          float* row = l + r * rows_of_w;
          losses[start + r] = grads ? row_loss<true>(row, V, target[start + r], inv_n)
                                    : row_loss<false>(row, V, target[start + r], inv_n);
          if (grads) std::fill(row + V, row + rows_of_w, 0.0f);
        }
      });
      if (need_dx) {
        Tensor dx_c = dx.narrow(0, start, n);
        gemm_out(dx_c, l_c, weight);
      }
      if (need_dw) gemm_out(dw, l_c.t(), x_c, /*accumulate=*/start != 0);
    }
    double total = 0;
    for (double v : losses) total += v;
    if (grads) ctx->save_for_backward({dx, dw});
    return at::scalar_tensor(total * inv_n, x.options());
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    tensor_list saved = ctx->get_saved_variables();
    const Tensor& g = grad_outputs[0];
    // The usual grad is exactly 1 (loss.backward()): hand over the saved gradients themselves. Otherwise scale
    // them, in place unless the graph is kept for another backward: no fresh V×C tensor per micro-batch.
    const bool unit = g.item<float>() == 1.0f;
    const bool in_place = !torch::autograd::get_current_graph_task_keep_graph();
    for (Tensor& t : saved)
      if (t.defined() && !unit) t = in_place ? t.mul_(g) : t * g;
    return {saved[0], saved[1], Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

}  // namespace

Tensor linear_cross_entropy(const Tensor& x, const Tensor& weight, const Tensor& targets, int64_t chunk_rows,
                            int64_t classes) {
  TORCH_CHECK(x.dim() == 2 && weight.dim() == 2 && x.size(1) == weight.size(1),
              "linear_cross_entropy: x [N, C] and weight [V, C] expected, got ", x.sizes(), " and ", weight.sizes());
  TORCH_CHECK(targets.dim() == 1 && targets.size(0) == x.size(0), "linear_cross_entropy: targets [", x.size(0),
              "] expected, got ", targets.sizes());
  TORCH_CHECK(targets.scalar_type() == torch::kLong, "linear_cross_entropy: targets must be int64, got ",
              targets.scalar_type());
  if (classes <= 0) classes = weight.size(0);
  TORCH_CHECK(classes <= weight.size(0), "linear_cross_entropy: ", classes, " classes but weight has only ",
              weight.size(0), " rows");
  // Under autocast the head runs in bf16, as the run asked (the chunked form); here it would stay float32.
  const bool fused = x.device().is_cpu() && weight.device().is_cpu() && targets.device().is_cpu() &&
                     x.scalar_type() == torch::kFloat && weight.scalar_type() == torch::kFloat && x.size(0) > 0 &&
                     weight.size(0) > 0 && !at::autocast::is_autocast_enabled(at::kCPU) &&
                     fused_kernel_enabled("cross_entropy");
  if (!fused) {
    const auto type = x.device().type();
    const bool chunked = x.size(0) > 0 && weight.size(0) > 0 && x.is_floating_point() &&
                         fused_kernel_enabled("cross_entropy") &&
                         ((type == at::kCPU && at::autocast::is_autocast_enabled(at::kCPU)) ||
                          (type == at::kCUDA && chunked_loss_on_cuda().load()));
    if (chunked) {
      const auto dtype =
          at::autocast::is_autocast_enabled(type) ? at::autocast::get_autocast_dtype(type) : weight.scalar_type();
      return chunked_linear_cross_entropy(x, weight, targets, dtype, chunk_rows, classes);
    }
    namespace F = torch::nn::functional;
    return F::cross_entropy(F::linear(x, weight).narrow(1, 0, classes), targets);
  }
  // Decided here: inside forward grad mode is off, and ctx->needs_input_grad has no edges to ask when nothing
  // requires grad (and during another backward, a recompute, it answers for that backward's graph).
  const bool grad_mode = torch::GradMode::is_enabled();
  return LinearCrossEntropy::apply(x, weight, targets, chunk_rows, classes, grad_mode && x.requires_grad(),
                                   grad_mode && weight.requires_grad());
}

int64_t linear_cross_entropy_chunk_rows(int64_t N, int64_t V) { return auto_chunk_rows(N, V); }

void use_chunked_loss_on_cuda(bool on) { chunked_loss_on_cuda().store(on); }

}  // namespace ssmax
