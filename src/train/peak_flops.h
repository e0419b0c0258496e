#pragma once
// The device's peak dense FLOP/s, the denominator of model-FLOPs utilisation (MFU = model FLOPs per token ×
// tokens/s ÷ peak; model FLOPs per token: GPTImpl::flops_per_token).
//   CUDA: a documented table by device name (dense bf16 tensor-core peaks from the vendors' data sheets: H200 and
//         H100 SXM 989 TFLOP/s, H100 PCIe 756, A100 312); 0 (MFU left out) for a device not in it.
//   CPU:  measured — a 4096 × 4096 float32 matmul through gemm_out (model/gemm.h: the BLAS the model's products use)
//         on the current intra-op threads, best of 3 after a warm-up — once per machine, then read from a cache keyed
//         by CPU model, thread count, LibTorch version, matmul size and BLAS:
//         $SSMAX_CACHE_DIR/peak_flops.json, else ~/.cache/ssmax-gpt/peak_flops.json.
#include <torch/torch.h>

#include <string>

namespace ssmax {

struct PeakFlops {
  double tflops = 0;   // 0: unknown
  std::string source;  // "measured", "cached", "table: <device name>" or "unknown: <device name>"
};

PeakFlops device_peak_flops(const torch::Device& device);

}  // namespace ssmax
