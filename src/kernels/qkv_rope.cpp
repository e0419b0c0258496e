#include "kernels/qkv_rope.h"

#include <ATen/Parallel.h>

#include <cstring>

#include "kernels/fused_kernels.h"

namespace ssmax {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct Shape {
  int64_t B, T, H, D, C;
  // 0 when every row of the batch shares the cos/sin tables and q_scale (one document per row), else the size of
  // one row's tables (T·D/2) and factors (H·T): packed documents give each row its own positions.
  int64_t table_stride = 0, scale_stride = 0;
};

// Row b's cos or sin at position t (shared tables have table_stride 0); null for no rotation.
const float* table_at(const float* table, int64_t b, int64_t t, const Shape& n) {
  return table ? table + b * n.table_stride + t * (n.D / 2) : nullptr;
}

// Each thread owns whole positions t (all batches and heads), so the q_scale gradient, a sum over the batch for
// each (h, t), is added in one fixed order: bit-identical for any thread count.
template <typename Body>
void for_each_position(int64_t T, const Body& body) {
  at::parallel_for(0, T, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) body(t);
  });
}

void forward_kernel(const float* qkv, const float* cos, const float* sin, const float* scale, float* q, float* k,
                    float* v, const Shape& n) {
  const int64_t half = n.D / 2;
  for_each_position(n.T, [&](int64_t t) {
    for (int64_t b = 0; b < n.B; ++b) {
      const float* c = table_at(cos, b, t, n);
      const float* s = table_at(sin, b, t, n);
      const float* row = qkv + (b * n.T + t) * 3 * n.C;
      for (int64_t h = 0; h < n.H; ++h) {
        const int64_t at = ((b * n.H + h) * n.T + t) * n.D;
        const float* qs = row + h * n.D;
        const float* ks = qs + n.C;
        const float factor = scale[b * n.scale_stride + h * n.T + t];
        float* __restrict qd = q + at;
        float* __restrict kd = k + at;
        if (c) {
          for (int64_t i = 0; i < half; ++i) {
            const float q1 = qs[i], q2 = qs[i + half], k1 = ks[i], k2 = ks[i + half];
            qd[i] = (q1 * c[i] - q2 * s[i]) * factor;
            qd[i + half] = (q1 * s[i] + q2 * c[i]) * factor;
            kd[i] = k1 * c[i] - k2 * s[i];
            kd[i + half] = k1 * s[i] + k2 * c[i];
          }
        } else {
          for (int64_t i = 0; i < n.D; ++i) qd[i] = qs[i] * factor;
          std::memcpy(kd, ks, n.D * sizeof(float));
        }
        std::memcpy(v + at, qs + 2 * n.C, n.D * sizeof(float));
      }
    }
  });
}

// The transpose of forward_kernel. gq/gk/gv may be null (an output nobody used); d_scale is null when q_scale
// needs no gradient, else [H, T] receiving Σ_b Σ_i gq·rope(q) ([B, H, T] and no sum over b with per-row factors).
void backward_kernel(const float* qkv, const float* cos, const float* sin, const float* scale, const float* gq,
                     const float* gk, const float* gv, float* d_qkv, float* d_scale, const Shape& n) {
  const int64_t half = n.D / 2;
  for_each_position(n.T, [&](int64_t t) {
    for (int64_t b = 0; b < n.B; ++b) {
      const float* c = table_at(cos, b, t, n);
      const float* s = table_at(sin, b, t, n);
      const float* row = qkv + (b * n.T + t) * 3 * n.C;
      float* d_row = d_qkv + (b * n.T + t) * 3 * n.C;
      for (int64_t h = 0; h < n.H; ++h) {
        const int64_t at = ((b * n.H + h) * n.T + t) * n.D;
        const float factor = scale[b * n.scale_stride + h * n.T + t];
        float* __restrict dq = d_row + h * n.D;
        float* __restrict dk = dq + n.C;
        float* __restrict dv = dq + 2 * n.C;
        if (gq) {
          const float* g = gq + at;
          const float* x = row + h * n.D;
          float dot = 0;  // Σ_i g·rope(x): the factor's gradient
          if (c) {
            for (int64_t i = 0; i < half; ++i) {
              const float g1 = g[i] * factor, g2 = g[i + half] * factor;
              dq[i] = g1 * c[i] + g2 * s[i];
              dq[i + half] = g2 * c[i] - g1 * s[i];
            }
            if (d_scale)
              for (int64_t i = 0; i < half; ++i)
                dot += g[i] * (x[i] * c[i] - x[i + half] * s[i]) + g[i + half] * (x[i] * s[i] + x[i + half] * c[i]);
          } else {
            for (int64_t i = 0; i < n.D; ++i) dq[i] = g[i] * factor;
            if (d_scale)
              for (int64_t i = 0; i < n.D; ++i) dot += g[i] * x[i];
          }
          if (d_scale) d_scale[b * n.scale_stride + h * n.T + t] += dot;
        } else {
          std::memset(dq, 0, n.D * sizeof(float));
        }
        if (gk) {
          const float* g = gk + at;
          if (c) {
            for (int64_t i = 0; i < half; ++i) {
              dk[i] = g[i] * c[i] + g[i + half] * s[i];
              dk[i + half] = g[i + half] * c[i] - g[i] * s[i];
            }
          } else {
            std::memcpy(dk, g, n.D * sizeof(float));
          }
        } else {
          std::memset(dk, 0, n.D * sizeof(float));
        }
        if (gv) std::memcpy(dv, gv + at, n.D * sizeof(float));
        else std::memset(dv, 0, n.D * sizeof(float));
      }
    }
  });
}

// Also null for the empty tables that stand for "no rotation" (autograd functions take no undefined inputs).
const float* data_or_null(const torch::Tensor& t) {
  return t.defined() && t.numel() > 0 ? t.data_ptr<float>() : nullptr;
}

// cos/sin are [T, D/2] or per row [B, T, D/2]; q_scale is 2-D (shared by the rows) or 3-D [B, H, T] (per row).
Shape shape(const torch::Tensor& qkv, int64_t n_head, const torch::Tensor& cos, const torch::Tensor& q_scale) {
  Shape n{qkv.size(0), qkv.size(1), n_head, qkv.size(2) / 3 / n_head, qkv.size(2) / 3};
  if (cos.dim() == 3) n.table_stride = n.T * (n.D / 2);
  if (q_scale.dim() == 3) n.scale_stride = n.H * n.T;
  return n;
}

class SplitHeads : public torch::autograd::Function<SplitHeads> {
 public:
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& qkv_in, int64_t n_head,
                               const torch::Tensor& cos_in, const torch::Tensor& sin_in, const torch::Tensor& q_scale) {
    const auto qkv = qkv_in.contiguous();
    const Shape n = shape(qkv, n_head, cos_in, q_scale);
    const auto cos = cos_in.contiguous(), sin = sin_in.contiguous();
    const auto scale = (n.scale_stride ? q_scale.expand({n.B, n.H, n.T}) : q_scale.expand({n.H, n.T})).contiguous();
    auto q = torch::empty({n.B, n.H, n.T, n.D}, qkv.options());
    auto k = torch::empty_like(q), v = torch::empty_like(q);
    forward_kernel(qkv.data_ptr<float>(), data_or_null(cos), data_or_null(sin), scale.data_ptr<float>(),
                   q.data_ptr<float>(), k.data_ptr<float>(), v.data_ptr<float>(), n);
    ctx->save_for_backward({qkv, cos, sin, scale});
    ctx->saved_data["n_head"] = n_head;
    ctx->saved_data["scale_sizes"] = q_scale.sizes().vec();
    return {q, k, v};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &qkv = saved[0], &cos = saved[1], &sin = saved[2], &scale = saved[3];
    const int64_t n_head = ctx->saved_data["n_head"].toInt();
    const Shape n = shape(qkv, n_head, cos, scale);
    auto contiguous = [](const torch::Tensor& g) { return g.defined() ? g.contiguous() : g; };
    const auto gq = contiguous(grads[0]), gk = contiguous(grads[1]), gv = contiguous(grads[2]);
    // needs_input_grad counts tensor arguments only: qkv, cos, sin, q_scale.
    const bool want_scale = ctx->needs_input_grad(3) && gq.defined();
    auto d_qkv = torch::empty_like(qkv);
    torch::Tensor d_scale = want_scale ? torch::zeros(scale.sizes(), qkv.options()) : torch::Tensor();
    backward_kernel(qkv.data_ptr<float>(), data_or_null(cos), data_or_null(sin), scale.data_ptr<float>(),
                    data_or_null(gq), data_or_null(gk), data_or_null(gv), d_qkv.data_ptr<float>(),
                    want_scale ? d_scale.data_ptr<float>() : nullptr, n);
    if (want_scale) d_scale = at::sum_to(d_scale, ctx->saved_data["scale_sizes"].toIntVector());
    return {d_qkv, torch::Tensor(), torch::Tensor(), torch::Tensor(), d_scale};
  }
};

bool kernel_applies(const torch::Tensor& qkv, const torch::Tensor& cos, const torch::Tensor& sin,
                    const torch::Tensor& q_scale) {
  auto cpu_float = [](const torch::Tensor& t) { return !t.defined() || (t.is_cpu() && t.scalar_type() == at::kFloat); };
  return qkv.is_cpu() && qkv.scalar_type() == at::kFloat && cpu_float(cos) && cpu_float(sin) && cpu_float(q_scale) &&
         cos.defined() == sin.defined() && (!cos.defined() || (!cos.requires_grad() && !sin.requires_grad()));
}

// x: [B, H, T, d]; cos/sin [T, d/2], or [B, T, d/2] per row (a head axis is inserted to broadcast).
torch::Tensor rotate_half(const torch::Tensor& x, const torch::Tensor& cos_in, const torch::Tensor& sin_in) {
  const auto cos = cos_in.dim() == 3 ? cos_in.unsqueeze(1) : cos_in,
             sin = sin_in.dim() == 3 ? sin_in.unsqueeze(1) : sin_in;
  const int64_t half = x.size(-1) / 2;
  auto x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  return torch::cat({x1 * cos - x2 * sin, x1 * sin + x2 * cos}, -1);
}

// q_scale [H, T] or [B, H, T] → a trailing axis against q's head dimension.
torch::Tensor broadcast_scale(const torch::Tensor& q_scale) { return q_scale.unsqueeze(-1); }

}  // namespace

HeadTensors split_heads_composite(const torch::Tensor& qkv, int64_t n_head, const torch::Tensor& cos,
                                  const torch::Tensor& sin, const torch::Tensor& q_scale) {
  const int64_t B = qkv.size(0), T = qkv.size(1), C = qkv.size(2) / 3;
  auto heads = qkv.view({B, T, 3, n_head, C / n_head}).permute({2, 0, 3, 1, 4});  // [3, B, H, T, d]
  auto q = heads[0], k = heads[1], v = heads[2];
  if (cos.defined()) {
    q = rotate_half(q, cos, sin);
    k = rotate_half(k, cos, sin);
  }
  return {(q * broadcast_scale(q_scale)).to(k.dtype()), k, v};
}

HeadTensors split_heads_grouped(const torch::Tensor& qkv, int64_t n_head, int64_t n_kv_head, const torch::Tensor& cos,
                                const torch::Tensor& sin, const torch::Tensor& q_scale) {
  TORCH_CHECK(qkv.dim() == 3 && qkv.size(2) % (n_head + 2 * n_kv_head) == 0,
              "split_heads_grouped: qkv must be [B, T, (n_head + 2·n_kv_head)·head_dim], got ", qkv.sizes());
  const int64_t B = qkv.size(0), T = qkv.size(1), d = qkv.size(2) / (n_head + 2 * n_kv_head);
  auto parts = qkv.split({n_head * d, n_kv_head * d, n_kv_head * d}, -1);
  auto heads = [&](const torch::Tensor& x, int64_t n) { return x.view({B, T, n, d}).transpose(1, 2); };
  auto q = heads(parts[0], n_head), k = heads(parts[1], n_kv_head), v = heads(parts[2], n_kv_head);
  if (cos.defined()) {
    q = rotate_half(q, cos, sin);
    k = rotate_half(k, cos, sin);
  }
  return {(q * broadcast_scale(q_scale)).to(k.dtype()).contiguous(), k.contiguous(), v.contiguous()};
}

HeadTensors split_heads(const torch::Tensor& qkv, int64_t n_head, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& q_scale) {
  TORCH_CHECK(qkv.dim() == 3 && qkv.size(2) % (3 * n_head) == 0, "split_heads: qkv must be [B, T, 3·C], got ",
              qkv.sizes());
  TORCH_CHECK(q_scale.dim() == 2 || q_scale.dim() == 3,
              "split_heads: q_scale must be broadcastable to [n_head, T] (2-D) or [B, n_head, T] (3-D)");
  if (cos.defined()) {
    const bool per_row = cos.dim() == 3 && cos.size(0) == qkv.size(0);
    TORCH_CHECK((cos.dim() == 2 || per_row) && cos.size(-2) == qkv.size(1) &&
                    cos.size(-1) * 2 * 3 * n_head == qkv.size(2) && sin.sizes() == cos.sizes(),
                "split_heads: cos/sin must be [T, head_dim/2] or [B, T, head_dim/2], got ", cos.sizes());
  }
  if (!kernel_applies(qkv, cos, sin, q_scale) || !fused_kernel_enabled("qkv_rope"))
    return split_heads_composite(qkv, n_head, cos, sin, q_scale);
  const auto none = torch::empty({0}, qkv.options());
  auto out = SplitHeads::apply(qkv, n_head, cos.defined() ? cos : none, sin.defined() ? sin : none, q_scale);
  return {out[0], out[1], out[2]};
}

}  // namespace ssmax
