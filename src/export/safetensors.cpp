#include "export/safetensors.h"

#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "export/safetensors_header.h"
#include "util/errors.h"
#include "util/files.h"

namespace ssmax {
namespace {

using json = nlohmann::json;

const std::map<torch::ScalarType, std::string>& dtype_names() {
  static const std::map<torch::ScalarType, std::string> names = {{torch::kFloat32, "F32"},
                                                                 {torch::kFloat16, "F16"},
                                                                 {torch::kBFloat16, "BF16"},
                                                                 {torch::kInt64, "I64"},
                                                                 {torch::kInt32, "I32"}};
  return names;
}

}  // namespace

std::string safetensors_bytes(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                              const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> ordered;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    auto cpu = tensor.detach().to(torch::kCPU).contiguous();
    auto dtype = dtype_names().find(cpu.scalar_type());
    if (dtype == dtype_names().end())
      throw RuntimeFailure(path + ": cannot export tensor " + name + " of type " +
                           std::string(c10::toString(cpu.scalar_type())));
    const uint64_t bytes = cpu.numel() * cpu.element_size();
    header[name] = {{"dtype", dtype->second}, {"shape", cpu.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    ordered.push_back(cpu);
  }
  std::string header_text = header.dump();
  header_text.append((8 - header_text.size() % 8) % 8, ' ');
  std::string file;
  file.reserve(8 + header_text.size() + offset);
  const uint64_t header_size = header_text.size();
  for (int i = 0; i < 8; ++i) file.push_back(static_cast<char>((header_size >> (8 * i)) & 0xff));
  file += header_text;
  for (const auto& t : ordered) file.append(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  return file;
}

void write_safetensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  write_file_atomic(path, safetensors_bytes(path, tensors, metadata));
}

SafetensorsFile read_safetensors(const std::string& path) {
  const std::string bytes = read_file(path);
  const SafetensorsLayout layout = parse_safetensors_layout(bytes, path);
  SafetensorsFile out;
  out.metadata = layout.metadata;
  for (const auto& entry : layout.tensors) {
    torch::ScalarType type = torch::kFloat32;
    for (const auto& [t, name] : dtype_names())
      if (name == entry.dtype) type = t;
    auto tensor = torch::empty(entry.shape, torch::TensorOptions().dtype(type));
    std::memcpy(tensor.data_ptr(), bytes.data() + layout.data_start + entry.begin, entry.end - entry.begin);
    out.tensors[entry.name] = tensor;
  }
  return out;
}

}  // namespace ssmax
