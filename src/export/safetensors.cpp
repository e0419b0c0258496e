#include "export/safetensors.h"

#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

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

void write_safetensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
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
  write_file_atomic(path, file);
}

SafetensorsFile read_safetensors(const std::string& path) {
  const std::string bytes = read_file(path);
  if (bytes.size() < 8) throw RuntimeFailure(path + ": too short to be a safetensors file");
  uint64_t header_size = 0;
  for (int i = 0; i < 8; ++i) header_size |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  if (header_size > bytes.size() - 8) throw RuntimeFailure(path + ": header length exceeds the file: not safetensors");
  json header = json::parse(bytes.substr(8, header_size), nullptr, false);
  if (header.is_discarded() || !header.is_object()) throw RuntimeFailure(path + ": header is not a JSON object");
  const uint64_t data_start = 8 + header_size;
  SafetensorsFile out;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      out.metadata = it->get<std::map<std::string, std::string>>();
      continue;
    }
    torch::ScalarType type = torch::kFloat32;
    bool known = false;
    for (const auto& [t, name] : dtype_names())
      if (name == (*it)["dtype"]) type = t, known = true;
    if (!known) throw RuntimeFailure(path + ": tensor " + it.key() + " has unsupported dtype " + (*it)["dtype"].dump());
    auto shape = (*it)["shape"].get<std::vector<int64_t>>();
    auto offsets = (*it)["data_offsets"].get<std::vector<uint64_t>>();
    auto tensor = torch::empty(shape, torch::TensorOptions().dtype(type));
    const uint64_t expected = tensor.numel() * tensor.element_size();
    if (offsets.size() != 2 || offsets[1] - offsets[0] != expected || data_start + offsets[1] > bytes.size())
      throw RuntimeFailure(path + ": tensor " + it.key() + " has bad data offsets or the file is truncated");
    std::memcpy(tensor.data_ptr(), bytes.data() + data_start + offsets[0], expected);
    out.tensors[it.key()] = tensor;
  }
  return out;
}

}  // namespace ssmax
