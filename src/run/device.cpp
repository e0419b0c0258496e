#include "run/device.h"

#include "util/errors.h"

namespace ssmax {

torch::Device resolve_device(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  if (name == "auto") return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  if (!torch::cuda::is_available())
    throw UsageError("device = \"" + name + "\" but this LibTorch build sees no CUDA device; use \"cpu\" or \"auto\"");
  torch::Device device(name);
  if (device.has_index() && device.index() >= static_cast<int>(torch::cuda::device_count()))
    throw UsageError("device = \"" + name + "\" but only " + std::to_string(torch::cuda::device_count()) +
                     " CUDA device(s) exist");
  return device;
}

}  // namespace ssmax
