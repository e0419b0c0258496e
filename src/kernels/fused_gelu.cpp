#include "kernels/fused_gelu.h"

#include <ATen/TensorIterator.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/fused_kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define SSMAX_GELU_AVX2 1
#define SSMAX_GELU_INLINE inline __attribute__((always_inline))
#else
#define SSMAX_GELU_AVX2 0
#define SSMAX_GELU_INLINE inline
#endif

namespace ssmax {
namespace {

// About 32 K elements per task, ATen's own grain: below that, waking a thread costs more than it saves.
constexpr int64_t kGrainElements = 32768;

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kCubic = 0.044715f;
// Beyond ±kSaturated, σ(2u) is 0 or 1 to far below float resolution (|2u| > 300); the backward clamps x there, so that
// x·(1 − σ)·du/dx stays finite instead of becoming 0·inf.
constexpr float kSaturated = 16.0f;

template <bool kFma>
SSMAX_GELU_INLINE float madd(float a, float b, float c) {
  if constexpr (kFma) return std::fma(a, b, c);
  // The baseline ISA has no FMA: two roundings (a compiler targeting one may still contract this).
  return a * b + c;
}

SSMAX_GELU_INLINE uint32_t bits_of(float f) {
  uint32_t i;
  std::memcpy(&i, &f, sizeof i);
  return i;
}

SSMAX_GELU_INLINE float float_of(uint32_t i) {
  float f;
  std::memcpy(&f, &i, sizeof f);
  return f;
}

// c ? a : b as bit masks. Written as ?:, GCC's partial-redundancy elimination moves the arithmetic that follows a clamp
// into the two branches, where (under the default -ftrapping-math) if-conversion may not run it speculatively: the loop
// stays scalar, 4-5x slower. NaN compares false, so select(x < lo, lo, x) lets a NaN through.
SSMAX_GELU_INLINE float select(bool c, float a, float b) {
  const uint32_t mask = 0u - static_cast<uint32_t>(c);
  return float_of((bits_of(a) & mask) | (bits_of(b) & ~mask));
}

// e^z with z clamped to [−87, 88.5], Cephes' expf: n = round(z / ln 2) by adding 1.5·2^23, r = z − n·ln 2 with ln 2
// split in two parts (exact product and difference), e^r by a degree-7 polynomial (measured ≤ 1.01 ulp), times 2^n
// assembled in the exponent bits. z ≥ 88.38 rounds to n = 128, whose exponent bits spell +inf: the overflow the caller
// wants. The floor keeps 2^n normal; below it e^z no longer matters next to 1.
template <bool kFma>
SSMAX_GELU_INLINE float exp_of(float z) {
  z = select(z < -87.0f, -87.0f, z);
  z = select(z > 88.5f, 88.5f, z);
  constexpr float kRound = 12582912.0f;  // 1.5·2^23: adding it leaves round(z / ln 2) in the low mantissa bits
  const float shifted = madd<kFma>(z, 1.44269504088896341f, kRound);
  const float n_float = shifted - kRound;
  float r = madd<kFma>(n_float, -0.693359375f, z);
  r = madd<kFma>(n_float, 2.12194440e-4f, r);
  float p = madd<kFma>(r, 1.9875691500e-4f, 1.3981999507e-3f);
  p = madd<kFma>(p, r, 8.3334519073e-3f);
  p = madd<kFma>(p, r, 4.1665795894e-2f);
  p = madd<kFma>(p, r, 1.6666665459e-1f);
  p = madd<kFma>(p, r, 5.0000001201e-1f);
  p = madd<kFma>(p, r * r, r) + 1.0f;
  const uint32_t n = bits_of(shifted) - bits_of(kRound);  // two's complement: n + 127 is the biased exponent
  return p * float_of((n + 127) << 23);
}

// σ(2u) and 1 − σ(2u), u = √(2/π)·(x + 0.044715·x³), each to a few ulps relative. 1 − σ = e^−2u·σ where σ ≥ ½ (no
// cancellation), 1 − σ where σ < ½ (there e^−2u may be +inf).
struct Logistic {
  float s, one_minus_s;
};

template <bool kFma>
SSMAX_GELU_INLINE Logistic logistic_of(float x) {
  // −2u in one product (·2 is exact); ±inf for |x| ≳ 1e13, which exp_of clamps.
  const float e = exp_of<kFma>((-2.0f * kSqrt2OverPi) * madd<kFma>(kCubic * x, x * x, x));
  const float s = 1.0f / (1.0f + e);
  return {s, select(s < 0.5f, 1.0f - s, e * s)};
}

// The hot loops, one copy per instruction set. Each element's arithmetic is the same whatever the loop split (vector
// body or scalar tail), so the thread count cannot change a result.
template <bool kFma>
SSMAX_GELU_INLINE void forward_loop(const float* __restrict x, float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    // σ is exactly 0 below about −10; the floor keeps x = −inf from making 0·inf.
    y[i] = select(x[i] < -kSaturated, -kSaturated, x[i]) * logistic_of<kFma>(x[i]).s;
  }
}

template <bool kFma>
SSMAX_GELU_INLINE void backward_loop(const float* __restrict g, const float* __restrict x, float* __restrict dx,
                                     int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    float xc = select(x[i] < -kSaturated, -kSaturated, x[i]);
    xc = select(xc > kSaturated, kSaturated, xc);
    const Logistic l = logistic_of<kFma>(xc);
    const float x2 = xc * xc;
    const float du = madd<kFma>(3.0f * kCubic * kSqrt2OverPi, x2, kSqrt2OverPi);  // du/dx
    dx[i] = g[i] * madd<kFma>(2.0f * xc * du, l.s * l.one_minus_s, l.s);
  }
}

#if SSMAX_GELU_AVX2
__attribute__((target("avx2,fma"))) void forward_avx2(const float* x, float* y, int64_t n) {
  forward_loop<true>(x, y, n);
}
__attribute__((target("avx2,fma"))) void backward_avx2(const float* g, const float* x, float* dx, int64_t n) {
  backward_loop<true>(g, x, dx, n);
}

bool cpu_has_avx2_fma() {
  static const bool has = [] {
    __builtin_cpu_init();  // only needed before constructors have run, harmless after
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return has;
}
#endif

void forward_chunk(const float* x, float* y, int64_t n) {
#if SSMAX_GELU_AVX2
  if (cpu_has_avx2_fma()) return forward_avx2(x, y, n);
#endif
  forward_loop<false>(x, y, n);
}

void backward_chunk(const float* g, const float* x, float* dx, int64_t n) {
#if SSMAX_GELU_AVX2
  if (cpu_has_avx2_fma()) return backward_avx2(g, x, dx, n);
#endif
  backward_loop<false>(g, x, dx, n);
}

// Threads: TensorIterator::for_each splits the elements with libtorch's parallel_for and hands each chunk over as
// one run of unit stride (the tensors are contiguous); the element loop covers whatever else it might hand over.
void forward_kernel(const torch::Tensor& x, const torch::Tensor& y) {
  auto iter = at::TensorIteratorConfig().add_output(y).add_const_input(x).build();
  iter.for_each(
      [](char** data, const int64_t* strides, int64_t n) {
        if (strides[0] == sizeof(float) && strides[1] == sizeof(float))
          return forward_chunk(reinterpret_cast<const float*>(data[1]), reinterpret_cast<float*>(data[0]), n);
        for (int64_t i = 0; i < n; ++i)
          forward_chunk(reinterpret_cast<const float*>(data[1] + i * strides[1]),
                        reinterpret_cast<float*>(data[0] + i * strides[0]), 1);
      },
      kGrainElements);
}

void backward_kernel(const torch::Tensor& g, const torch::Tensor& x, const torch::Tensor& dx) {
  auto iter = at::TensorIteratorConfig().add_output(dx).add_const_input(g).add_const_input(x).build();
  iter.for_each(
      [](char** data, const int64_t* strides, int64_t n) {
        if (strides[0] == sizeof(float) && strides[1] == sizeof(float) && strides[2] == sizeof(float))
          return backward_chunk(reinterpret_cast<const float*>(data[1]), reinterpret_cast<const float*>(data[2]),
                                reinterpret_cast<float*>(data[0]), n);
        for (int64_t i = 0; i < n; ++i)
          backward_chunk(reinterpret_cast<const float*>(data[1] + i * strides[1]),
                         reinterpret_cast<const float*>(data[2] + i * strides[2]),
                         reinterpret_cast<float*>(data[0] + i * strides[0]), 1);
      },
      kGrainElements);
}

bool fast_path_applies(const torch::Tensor& x) {
  return x.defined() && x.device().is_cpu() && x.layout() == torch::kStrided && x.scalar_type() == torch::kFloat &&
         x.numel() > 0;
}

struct FusedGeluTanh : public torch::autograd::Function<FusedGeluTanh> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x) {
    auto xc = x.contiguous();
    auto y = torch::empty_like(xc, at::MemoryFormat::Contiguous);
    forward_kernel(xc, y);
    // x, not y: the backward needs x's σ and du/dx anyway, and double backward differentiates through x.
    ctx->save_for_backward({x});
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto x = ctx->get_saved_variables()[0];
    // create_graph: ATen's gelu_backward, which has its own derivative.
    if (torch::GradMode::is_enabled()) return {torch::gelu_backward(grad_outputs[0], x, "tanh")};
    auto g = grad_outputs[0].contiguous();
    auto xc = x.contiguous();
    auto dx = torch::empty_like(xc, at::MemoryFormat::Contiguous);
    backward_kernel(g, xc, dx);
    return {dx};
  }
};

}  // namespace

torch::Tensor fused_gelu_tanh(const torch::Tensor& x) {
  if (!fast_path_applies(x) || !fused_kernel_enabled("gelu")) return torch::gelu(x, "tanh");
  return FusedGeluTanh::apply(x);
}

}  // namespace ssmax
