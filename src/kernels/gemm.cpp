#include "kernels/gemm.h"

#include <ATen/Version.h>
#include <ATen/autocast_mode.h>
#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <regex>

#include "kernels/fused_kernels.h"
#include "util/system_info.h"

namespace ssmax {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// CBLAS as OpenBLAS declares it (32-bit integers: the non-ILP64 libopenblas.so.0).
enum CblasOrder { kRowMajor = 101 };
enum CblasTranspose { kNoTrans = 111, kTrans = 112 };
using SgemmFn = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float, float*, int);
using ConfigFn = char* (*)();

struct OpenBlas {
  SgemmFn sgemm = nullptr;
  std::string description;
  std::string core;  // openblas_get_corename(): the kernel family it runs on this CPU
};

const OpenBlas& openblas() {
  static const OpenBlas lib = [] {
    OpenBlas l;
#ifdef SSMAX_OPENBLAS_OPENMP
    const std::string path = SSMAX_OPENBLAS_OPENMP;
    void* handle = path.empty() ? nullptr : ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle) l.sgemm = reinterpret_cast<SgemmFn>(::dlsym(handle, "cblas_sgemm"));
    if (l.sgemm) {
      auto config = reinterpret_cast<ConfigFn>(::dlsym(handle, "openblas_get_config"));
      auto core = reinterpret_cast<ConfigFn>(::dlsym(handle, "openblas_get_corename"));
      l.core = core ? core() : "";
      l.description = std::string(config ? config() : "OpenBLAS") + " (" + path + ")";
      return l;
    }
    l.description = "could not load " + (path.empty() ? std::string("OpenBLAS") : path) +
                    ": install libopenblas0-openmp and rebuild";
#else
    l.description = "built without OpenBLAS's OpenMP variant: install libopenblas0-openmp and rebuild";
#endif
    return l;
  }();
  return lib;
}

// One operand as CBLAS sees it: a row-major [rows, cols] matrix, or the transpose of one.
struct Operand {
  Tensor storage;
  CblasTranspose trans;
  int ld;
};

Operand operand(const Tensor& t) {
  const int64_t rows = t.size(0), cols = t.size(1);
  if (t.stride(1) == 1 && t.stride(0) >= std::max<int64_t>(cols, 1))
    return {t, kNoTrans, static_cast<int>(t.stride(0))};
  if (t.stride(0) == 1 && t.stride(1) >= std::max<int64_t>(rows, 1)) return {t, kTrans, static_cast<int>(t.stride(1))};
  Tensor c = t.contiguous();
  return {c, kNoTrans, static_cast<int>(std::max<int64_t>(cols, 1))};
}

bool fits_int(const Tensor& t) {
  for (int64_t d = 0; d < t.dim(); ++d)
    if (t.size(d) >= INT_MAX || t.stride(d) >= INT_MAX) return false;
  return true;
}

// Until someone chooses, OpenBLAS where it is usable (what the build was made for).
std::atomic<CpuBlas>& chosen_blas() {
  static std::atomic<CpuBlas> blas{CpuBlas::kOpenBlas};
  return blas;
}

bool openblas_enabled() { return openblas_usable() && chosen_blas().load() == CpuBlas::kOpenBlas; }

bool cpu_float(const Tensor& t) { return t.device().is_cpu() && t.scalar_type() == torch::kFloat; }

bool openblas_applies(CpuBlas blas, const Tensor& c, const Tensor& a, const Tensor& b) {
  return blas == CpuBlas::kOpenBlas && openblas_loaded() && cpu_float(a) && cpu_float(b) && cpu_float(c) &&
         c.is_contiguous() && a.numel() > 0 && b.numel() > 0 && fits_int(a) && fits_int(b) && fits_int(c);
}

bool autocast_on(const Tensor& x) { return at::autocast::is_autocast_enabled(x.device().type()); }

// x·weightᵀ + bias with its backward through gemm_out. An empty bias ({0}) stands for none: autograd functions take
// no undefined inputs.
class LinearFunction : public torch::autograd::Function<LinearFunction> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const Tensor& weight, const Tensor& bias) {
    const int64_t in = weight.size(1), out = weight.size(0);
    const Tensor x2 = x.reshape({-1, in}).contiguous();
    const bool has_bias = bias.numel() > 0;
    // clone, not contiguous(): for one row (decoding one token) bias.expand({1, out}) already counts as contiguous,
    // and contiguous() would hand back the bias's own storage for the product to accumulate into.
    Tensor y = has_bias ? bias.expand({x2.size(0), out}).clone(at::MemoryFormat::Contiguous)
                        : torch::empty({x2.size(0), out}, x.options());
    gemm_out(y, x2, weight.t(), has_bias);
    ctx->save_for_backward({x2, weight});
    ctx->saved_data["has_bias"] = has_bias;
    auto sizes = x.sizes().vec();
    sizes.back() = out;
    return y.view(sizes);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor &x2 = saved[0], &weight = saved[1];
    const auto x_sizes = [&] {
      auto s = grads[0].sizes().vec();
      s.back() = weight.size(1);
      return s;
    }();
    const Tensor g = grads[0].reshape({-1, weight.size(0)}).contiguous();
    Tensor dx, dw, db;
    if (torch::GradMode::is_enabled()) {  // create_graph: differentiable ATen formulas
      if (ctx->needs_input_grad(0)) dx = g.mm(weight).view(x_sizes);
      if (ctx->needs_input_grad(1)) dw = g.t().mm(x2);
    } else {
      if (ctx->needs_input_grad(0)) {
        dx = torch::empty({g.size(0), weight.size(1)}, g.options());
        gemm_out(dx, g, weight);
        dx = dx.view(x_sizes);
      }
      if (ctx->needs_input_grad(1)) {
        dw = torch::empty_like(weight, at::MemoryFormat::Contiguous);
        gemm_out(dw, g.t(), x2);
      }
    }
    if (ctx->saved_data["has_bias"].toBool() && ctx->needs_input_grad(2)) db = g.sum(0);
    return {dx, dw, db};
  }
};

}  // namespace

void use_cpu_blas(CpuBlas blas) { chosen_blas().store(blas); }

CpuBlas cpu_blas_in_use() { return openblas_enabled() ? CpuBlas::kOpenBlas : CpuBlas::kAten; }

bool openblas_loaded() { return openblas().sgemm != nullptr; }

bool openblas_usable() { return openblas_loaded() && fused_kernel_enabled("gemm"); }

std::string openblas_description() { return openblas().description; }

std::string openblas_core() { return openblas().core; }

std::string aten_blas_description() {
  if (!at::hasMKL()) return "ATen (its built-in BLAS)";
  // show_config() names the MKL it was built with: "Intel(R) oneAPI Math Kernel Library Version 2024.2-Product …".
  static const std::string version = [] {
    std::smatch m;
    const std::string config = at::show_config();
    return std::regex_search(config, m, std::regex(R"(Math Kernel Library Version ([0-9.]+))")) ? " " + m[1].str()
                                                                                                : std::string();
  }();
  return "ATen/MKL" + version;
}

std::string cpu_speed_identity() {
  std::string identity = cpu_signature() + " | " + std::to_string(at::get_num_threads()) + " threads | LibTorch " +
                         TORCH_VERSION + " | " + aten_blas_description() + " | " + openblas_description();
  // The settings that change which instructions the libraries (and this program) use.
  for (const char* name : {"OPENBLAS_CORETYPE", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS",
                           "SSMAX_HIDE_CPU_FLAGS"})
    if (const char* value = std::getenv(name)) identity += std::string(" | ") + name + "=" + value;
  return identity;
}

void gemm_out(Tensor& c, const Tensor& a, const Tensor& b, bool accumulate) {
  gemm_out_with(cpu_blas_in_use(), c, a, b, accumulate);
}

void gemm_out_with(CpuBlas blas, Tensor& c, const Tensor& a, const Tensor& b, bool accumulate) {
  TORCH_CHECK(a.dim() == 2 && b.dim() == 2 && c.dim() == 2 && a.size(1) == b.size(0) && c.size(0) == a.size(0) &&
                  c.size(1) == b.size(1),
              "gemm_out: [M, K] × [K, N] → [M, N] expected, got ", a.sizes(), " × ", b.sizes(), " → ", c.sizes());
  if (!openblas_applies(blas, c, a, b)) {
    if (accumulate) c.addmm_(a, b);
    else at::mm_out(c, a, b);
    return;
  }
  const Operand A = operand(a), B = operand(b);
  openblas().sgemm(kRowMajor, A.trans, B.trans, static_cast<int>(c.size(0)), static_cast<int>(c.size(1)),
                   static_cast<int>(a.size(1)), 1.0f, A.storage.data_ptr<float>(), A.ld, B.storage.data_ptr<float>(),
                   B.ld, accumulate ? 1.0f : 0.0f, c.data_ptr<float>(),
                   static_cast<int>(std::max<int64_t>(c.size(1), 1)));
}

Tensor gemm_linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const bool fast = openblas_enabled() && cpu_float(x) && cpu_float(weight) && (!bias.defined() || cpu_float(bias)) &&
                    !autocast_on(x) && x.numel() > 0;
  if (!fast) return torch::nn::functional::linear(x, weight, bias);
  return LinearFunction::apply(x, weight, bias.defined() ? bias : torch::empty({0}, weight.options()));
}

std::string gemm_backend() {
  if (openblas_enabled()) return openblas().description;
  if (!fused_kernel_enabled("gemm")) return aten_blas_description() + " (SSMAX_UNFUSED names gemm)";
  if (!openblas().sgemm) return aten_blas_description() + " (" + openblas().description + ")";
  return aten_blas_description() + " (chosen over OpenBLAS)";
}

}  // namespace ssmax
