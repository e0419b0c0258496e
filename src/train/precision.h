#pragma once
// Training precision (train.precision, train.tf32): the forward pass under bf16 autocast or in float32,
// and TF32 tensor cores for float32 matmuls on CUDA. Weights, gradients and AdamW state stay float32 in
// every case ("master weights"), so checkpoints do not depend on the precision a run used.
#include <torch/torch.h>

#include "config/config.h"

namespace ssmax {

// Refuses combinations that cannot work (UsageError naming the key), warns about slow ones, and switches
// TF32 on or off for this process. Call once the device is known.
void configure_precision(const TrainConfig& train, const torch::Device& device);

// While alive, ops on `device` run under autocast to bf16 when `bf16` is set (matmuls and attention in
// bf16, reductions such as the loss in float32); otherwise it does nothing. Scopes may nest.
class AutocastScope {
 public:
  AutocastScope(const torch::Device& device, bool bf16);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  c10::DeviceType type_ = c10::DeviceType::CPU;
  bool was_enabled_ = false;
  at::ScalarType previous_dtype_ = at::kFloat;
};

// The CPU's bf16 matrix instructions that oneDNN uses ("AMX tiles and AVX-512-BF16"); empty where bf16 is emulated.
std::string cpu_bf16_units();

inline bool uses_bf16(const TrainConfig& train) { return train.precision == "bf16"; }

}  // namespace ssmax
