#pragma once
// Peak memory of a CUDA device as LibTorch's caching allocator counts it; 0 for the CPU.
#include <torch/torch.h>

namespace ssmax {

void reset_peak_device_memory(const torch::Device& device);
double peak_device_memory(const torch::Device& device);  // bytes

}  // namespace ssmax
