// The LM head and its loss a chunk of rows at a time, in ATen operations, for any device and compute dtype
// (linear_cross_entropy.h): what the CPU's float32 kernel does, for bf16 autocast on the CPU and for CUDA.
//
// Per chunk: logits = x_c · Wᵀ in the compute dtype (bf16 products under autocast, as F::linear would run them),
// then in float32 the log-sum-exp, the loss, and — when gradients are wanted — the softmax minus the one-hot, /N,
// which gives dx_c = G·W and dW += Gᵀ·x_c right away (G in the compute dtype again). Only one chunk of logits
// lives at a time: at vocabulary 50257 × 16k tokens the composite's float32 logits, log-softmax and their
// gradients are several GB; here a chunk is budget-sized. The gradients are made in the forward pass and handed
// over in backward, so nothing is recomputed.
#include <torch/csrc/autograd/graph_task.h>

#include <algorithm>

#include "kernels/linear_cross_entropy.h"

namespace ssmax {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// Float32 logits per chunk: 8 MB on the CPU (the chunk stays in cache, as for the float32 kernel), 256 MB on a GPU
// (big products keep its matrix units busy; a few chunks per step at vocabulary 50257).
int64_t chunk_rows_for(const Tensor& x, int64_t N, int64_t V) {
  if (x.device().is_cpu()) return linear_cross_entropy_chunk_rows(N, V);
  constexpr int64_t kChunkBytes = int64_t{256} << 20;
  return std::min(N, std::max<int64_t>(256, kChunkBytes / (V * 4)));
}

class ChunkedLinearCrossEntropy : public torch::autograd::Function<ChunkedLinearCrossEntropy> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const Tensor& weight, const Tensor& targets,
                        int64_t compute_dtype, int64_t chunk_rows, int64_t classes, bool need_dx, bool need_dw) {
    const auto dtype = static_cast<at::ScalarType>(compute_dtype);
    // Products over all rows of W (padding included: aligned shapes); softmax and loss over the classes only.
    const int64_t N = x.size(0), C = x.size(1), rows_of_w = weight.size(0), V = classes;
    const int64_t rows = chunk_rows > 0 ? std::min(chunk_rows, N) : chunk_rows_for(x, N, rows_of_w);
    const Tensor w = weight.to(dtype);  // one cast for every chunk
    Tensor dx = need_dx ? at::empty({N, C}, x.options()) : Tensor();
    Tensor dw = need_dw ? at::zeros({rows_of_w, C}, weight.options()) : Tensor();
    Tensor total = at::zeros({}, x.options().dtype(at::kFloat));
    for (int64_t start = 0; start < N; start += rows) {
      const int64_t n = std::min(rows, N - start);
      const Tensor x_c = x.narrow(0, start, n).to(dtype);
      const Tensor t_c = targets.narrow(0, start, n).unsqueeze(1);
      Tensor all_logits = at::mm(x_c, w.t()).to(at::kFloat);
      Tensor logits = all_logits.narrow(1, 0, V);
      const Tensor lse = logits.logsumexp(1, /*keepdim=*/true);
      total += (lse - logits.gather(1, t_c)).sum();
      if (!need_dx && !need_dw) continue;
      logits.sub_(lse).exp_();  // the softmax, in place of the logits
      logits.scatter_add_(1, t_c, at::full({n, 1}, -1.0f, logits.options())).mul_(1.0 / static_cast<double>(N));
      if (rows_of_w > V) all_logits.narrow(1, V, rows_of_w - V).zero_();
      const Tensor& g = all_logits;
      const Tensor g_c = g.to(dtype);
      if (need_dx) dx.narrow(0, start, n).copy_(at::mm(g_c, w));
      if (need_dw) dw.add_(at::mm(g_c.t(), x_c));
    }
    if (need_dx || need_dw) ctx->save_for_backward({dx, dw});
    return total / static_cast<double>(N);  // float32, as cross_entropy under autocast
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    tensor_list saved = ctx->get_saved_variables();
    const Tensor& g = grad_outputs[0];
    // Scaled by the upstream gradient on its device (no read-back to the host), in place unless the graph is kept.
    const bool in_place = !torch::autograd::get_current_graph_task_keep_graph();
    for (Tensor& t : saved)
      if (t.defined()) t = in_place ? t.mul_(g) : t * g;
    return {saved[0], saved[1], Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

}  // namespace

Tensor chunked_linear_cross_entropy(const Tensor& x, const Tensor& weight, const Tensor& targets,
                                    at::ScalarType compute_dtype, int64_t chunk_rows, int64_t classes) {
  // Decided here, as for the float32 kernel: inside forward grad mode is off.
  const bool grad_mode = torch::GradMode::is_enabled();
  if (classes <= 0) classes = weight.size(0);
  return ChunkedLinearCrossEntropy::apply(x, weight, targets, static_cast<int64_t>(compute_dtype), chunk_rows, classes,
                                          grad_mode && x.requires_grad(), grad_mode && weight.requires_grad());
}

}  // namespace ssmax
