#pragma once
// The safetensors format (https://github.com/huggingface/safetensors), enough of it to write and
// read back float tensors:  u64 little-endian header length N | N bytes of JSON header | raw data.
// Header: {"__metadata__": {string: string}, NAME: {"dtype": "F32", "shape": [...],
// "data_offsets": [begin, end]}} with offsets relative to the start of the data; the header is
// padded with spaces to a multiple of 8 bytes. Tensors are written in name order, C-contiguous.
#include <torch/torch.h>

#include <map>
#include <string>

namespace ssmax {

// The whole file. Tensors are converted to contiguous CPU; float32, float16, bfloat16, int64 and int32 are
// supported (another type is a RuntimeFailure naming `path`, the file it is meant for).
std::string safetensors_bytes(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                              const std::map<std::string, std::string>& metadata);

// Writes safetensors_bytes atomically (util/files.h).
void write_safetensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata);

struct SafetensorsFile {
  std::map<std::string, torch::Tensor> tensors;
  std::map<std::string, std::string> metadata;
};

// Throws RuntimeFailure naming the file on a malformed header or truncated data.
SafetensorsFile read_safetensors(const std::string& path);

}  // namespace ssmax
