#pragma once
// Which device a run or an evaluation uses: the config key `device` or the --device option, resolved against what
// this LibTorch build sees. The one torch file of run/ (compiled with the torch code); the names themselves are
// checked without torch (is_device_name in config/schema.h).
#include <torch/torch.h>

#include <string>

namespace ssmax {

// "auto" | "cpu" | "cuda" | "cuda:N" → a device that exists, or UsageError saying why not.
torch::Device resolve_device(const std::string& name);

}  // namespace ssmax
