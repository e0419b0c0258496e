#include "kernels/fused_rms_norm.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/fused_kernels.h"

namespace ssmax {
namespace {

// Independent partial sums per row reduction: without -ffast-math the compiler may not reorder one running sum, but it
// vectorizes and pipelines a fixed set of lanes.
constexpr int64_t kLanes = 8;
static_assert(kLanes == 8, "dot() adds the lanes pairwise by hand");
// dweight partial sums cover this many rows each, whatever the thread count: the summation order is fixed. They add in
// float over a bounded length; the chunks then add in double, so the error does not grow with N. (Double throughout
// measured ~20 % slower; float row sums are as accurate as the composite's.)
constexpr int64_t kChunkRows = 32;
// About 32 K elements per task, ATen's own grain: below that, waking a thread costs more than it saves.
constexpr int64_t kGrainElements = 32768;

// Σ a[i]·b[i] over n elements.
inline float dot(const float* __restrict a, const float* __restrict b, int64_t n) {
  float lane[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int64_t k = 0; k < kLanes; ++k) lane[k] += a[i + k] * b[i + k];
  float tail = 0;
  for (; i < n; ++i) tail += a[i] * b[i];
  return ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7])) + tail;
}

int64_t grain_rows(int64_t C) { return std::max<int64_t>(1, kGrainElements / std::max<int64_t>(1, C)); }

torch::Tensor composite_rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  return x * torch::rsqrt(x.pow(2).mean(-1, /*keepdim=*/true) + eps) * weight;
}

bool fast_path_applies(const torch::Tensor& x, const torch::Tensor& weight) {
  return x.defined() && weight.defined() && x.device().is_cpu() && weight.device().is_cpu() &&
         x.layout() == torch::kStrided && weight.layout() == torch::kStrided && x.scalar_type() == torch::kFloat &&
         weight.scalar_type() == torch::kFloat && x.dim() >= 1 && weight.dim() == 1 && weight.size(0) == x.size(-1) &&
         x.numel() > 0;
}

void forward_kernel(const float* x, const float* w, float* y, float* rstd, int64_t N, int64_t C, double eps) {
  at::parallel_for(0, N, grain_rows(C), [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const float* __restrict xr = x + row * C;
      float* __restrict yr = y + row * C;
      const float r = static_cast<float>(1.0 / std::sqrt(static_cast<double>(dot(xr, xr, C)) / C + eps));
      rstd[row] = r;
      // Same rounding order as the composite (x·r)·w.
      for (int64_t c = 0; c < C; ++c) yr[c] = xr[c] * r * w[c];
    }
  });
}

// dx (may be null) per row; dweight (may be null) per chunk into partial[chunk, C], then summed in chunk order.
void backward_kernel(const float* g, const float* x, const float* w, const float* rstd, float* dx, float* dweight,
                     int64_t N, int64_t C) {
  const int64_t n_chunks = (N + kChunkRows - 1) / kChunkRows;
  std::vector<float> partial(dweight ? n_chunks * C : 0);
  const int64_t grain_chunks = std::max<int64_t>(1, grain_rows(C) / kChunkRows);
  at::parallel_for(0, n_chunks, grain_chunks, [&](int64_t chunk_begin, int64_t chunk_end) {
    for (int64_t chunk = chunk_begin; chunk < chunk_end; ++chunk) {
      float* __restrict part = dweight ? partial.data() + chunk * C : nullptr;
      for (int64_t row = chunk * kChunkRows; row < std::min(N, (chunk + 1) * kChunkRows); ++row) {
        const float* __restrict gr = g + row * C;
        const float* __restrict xr = x + row * C;
        const float r = rstd[row];
        if (part)
          for (int64_t c = 0; c < C; ++c) part[c] += gr[c] * xr[c] * r;
        if (!dx) continue;
        float* __restrict dxr = dx + row * C;
        for (int64_t c = 0; c < C; ++c) dxr[c] = gr[c] * w[c];  // gw, kept in dx's row until the last pass
        const float k = dot(dxr, xr, C) / static_cast<float>(C) * r * r;
        for (int64_t c = 0; c < C; ++c) dxr[c] = r * (dxr[c] - xr[c] * k);
      }
    }
  });
  if (!dweight) return;
  // Columns are independent and each adds its chunks in chunk order, so any column split gives the same bits.
  at::parallel_for(0, C, std::max<int64_t>(1, kGrainElements / n_chunks), [&](int64_t begin, int64_t end) {
    std::vector<double> sum(end - begin, 0.0);
    for (int64_t chunk = 0; chunk < n_chunks; ++chunk) {
      const float* __restrict part = partial.data() + chunk * C + begin;
      for (int64_t c = 0; c < end - begin; ++c) sum[c] += part[c];
    }
    for (int64_t c = begin; c < end; ++c) dweight[c] = static_cast<float>(sum[c - begin]);
  });
}

struct FusedRmsNorm : public torch::autograd::Function<FusedRmsNorm> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, double eps) {
    auto xc = x.contiguous();
    auto wc = weight.contiguous();
    const int64_t C = x.size(-1), N = x.numel() / C;
    auto y = torch::empty_like(xc);
    auto rstd = torch::empty({N}, xc.options());
    forward_kernel(xc.data_ptr<float>(), wc.data_ptr<float>(), y.data_ptr<float>(), rstd.data_ptr<float>(), N, C, eps);
    // The original x, not xc: double backward differentiates through it.
    ctx->save_for_backward({x, weight, rstd});
    ctx->saved_data["eps"] = eps;
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &weight = saved[1], &rstd = saved[2];
    const bool need_dx = ctx->needs_input_grad(0), need_dw = ctx->needs_input_grad(1);
    const int64_t C = x.size(-1), N = x.numel() / C;
    torch::Tensor dx, dw;
    if (torch::GradMode::is_enabled()) {
      // create_graph: the same formulas in differentiable ATen ops (r recomputed from x so it carries its graph).
      const double eps = ctx->saved_data["eps"].toDouble();
      const auto& g = grad_outputs[0];
      auto r = torch::rsqrt(x.pow(2).mean(-1, /*keepdim=*/true) + eps);
      auto gw = g * weight;
      if (need_dx) dx = r * (gw - x * r.pow(2) * (gw * x).mean(-1, /*keepdim=*/true));
      if (need_dw) dw = (g * x * r).reshape({N, C}).sum(0);
      return {dx, dw, torch::Tensor()};
    }
    auto g = grad_outputs[0].contiguous();
    auto xc = x.contiguous();
    auto wc = weight.contiguous();
    if (need_dx) dx = torch::empty_like(xc);
    if (need_dw) dw = torch::empty_like(wc);
    backward_kernel(g.data_ptr<float>(), xc.data_ptr<float>(), wc.data_ptr<float>(), rstd.data_ptr<float>(),
                    need_dx ? dx.data_ptr<float>() : nullptr, need_dw ? dw.data_ptr<float>() : nullptr, N, C);
    return {dx, dw, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor fused_rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  if (!fast_path_applies(x, weight) || !fused_kernel_enabled("rms_norm")) return composite_rms_norm(x, weight, eps);
  return FusedRmsNorm::apply(x, weight, eps);
}

}  // namespace ssmax
