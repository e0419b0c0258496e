#pragma once
// The device's peak dense FLOP/s, the denominator of model-FLOPs utilisation (MFU = model FLOPs per token ×
// tokens/s per process ÷ peak; model FLOPs per token: GPTImpl::flops_per_token).
//   CUDA: a documented table by device name (dense bf16 tensor-core peaks from the vendors' data sheets: H200 and
//         H100 SXM 989 TFLOP/s, H100 PCIe 756, A100 312); 0 (MFU left out) for a device not in it.
//   CPU:  measured — the best this machine does, whichever library runs the model: a 4096 × 4096 float32 matmul
//         through each CPU BLAS (kernels/gemm.h: OpenBLAS and ATen/MKL), best of 3 spaced repetitions on the current
//         intra-op threads; for a bf16 run also ATen's bf16 matmul (oneDNN/MKL), the higher of the two counting.
//         Measured once per machine, then read from the machine cache (util/machine_cache.h) under a key naming the
//         CPU, threads, LibTorch, both libraries and OPENBLAS_CORETYPE — never the library a run happens to use.
#include <torch/torch.h>

#include <optional>
#include <string>

namespace ssmax {

struct PeakFlops {
  double tflops = 0;   // 0: unknown
  std::string source;  // "measured", "cached", "re-measured", "table: <device name>", "unknown: <device name>"
};

PeakFlops device_peak_flops(const torch::Device& device, bool bf16 = false);

// MFU that cannot pass 100 %: a step measured faster than the peak means the peak is wrong (measured on a busy
// machine, say). A measured CPU peak is then measured again, raised to at least what the step did and corrected in
// the cache; a table or given peak is raised to what the step did; either way a warning says so.
class MfuMeter {
 public:
  MfuMeter(const torch::Device& device, bool bf16, PeakFlops peak);
  // Utilisation of one process doing `model_flops_per_s` (model FLOPs per token × its tokens/s); nothing when the
  // peak is unknown.
  std::optional<double> mfu(double model_flops_per_s);
  const PeakFlops& peak() const { return peak_; }

 private:
  torch::Device device_;
  bool bf16_;
  PeakFlops peak_;
};

}  // namespace ssmax
