#pragma once
// `export`: a checkpoint's weights as safetensors plus the model config as JSON. Torch-free header.
#include <cstdint>
#include <string>

namespace ssmax {

struct ExportResult {
  std::string checkpoint, weights_path, config_path;
  int64_t step = 0;
  size_t tensors = 0;
};

// `out` must end in .safetensors; the config goes beside it as <stem>.config.json. Existing files
// are refused unless `overwrite`.
ExportResult export_checkpoint(const std::string& checkpoint_or_run_dir, const std::string& out, bool overwrite);

}  // namespace ssmax
