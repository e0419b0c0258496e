#include "export/safetensors_header.h"

#include <algorithm>
#include <tuple>

#include <nlohmann/json.hpp>

#include "util/errors.h"
#include "util/files.h"

namespace ssmax {
namespace {

using json = nlohmann::json;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw RuntimeFailure(path + ": " + what + ": not a safetensors file this program can read");
}

// A tensor's name in a message, quoted; escaped as in JSON, so that a name holding a newline keeps it one line.
std::string quoted(const std::string& name) {
  const std::string escaped = json(name).dump(-1, ' ', false, json::error_handler_t::replace);
  return "'" + escaped.substr(1, escaped.size() - 2) + "'";
}

std::string byte_range(uint64_t begin, uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + ")";
}

// The format's rule (safetensors' own reader enforces it): sorted by offset, each tensor begins where the one before
// it ends, and the last ends at the end of the file. An overlap would hand two tensors the same weights.
void check_tiling(std::vector<const SafetensorsEntry*> order, uint64_t data_size, const std::string& path) {
  const std::string rule = ": the data must be the tensors' bytes, each byte in exactly one tensor";
  std::sort(order.begin(), order.end(), [](const SafetensorsEntry* a, const SafetensorsEntry* b) {
    return std::tie(a->begin, a->end) < std::tie(b->begin, b->end);
  });
  uint64_t covered = 0;
  const SafetensorsEntry* previous = nullptr;
  for (const SafetensorsEntry* t : order) {
    if (t->begin < covered)  // then previous ends after t begins
      throw RuntimeFailure(path + ": tensors " + quoted(previous->name) + " (data bytes " +
                           byte_range(previous->begin, previous->end) + ") and " + quoted(t->name) + " (data bytes " +
                           byte_range(t->begin, t->end) + ") overlap" + rule);
    if (t->begin > covered)
      throw RuntimeFailure(path + ": data bytes " + byte_range(covered, t->begin) + " (before tensor " +
                           quoted(t->name) + ") belong to no tensor" + rule);
    covered = t->end;
    previous = t;
  }
  if (covered != data_size)
    throw RuntimeFailure(path + ": data bytes " + byte_range(covered, data_size) + " (at the end of the file) belong " +
                         "to no tensor" + rule);
}

SafetensorsEntry parse_entry(const std::string& name, const json& j, uint64_t data_size, const std::string& path) {
  const std::string where = "tensor " + quoted(name);
  if (!j.is_object()) fail(path, where + " is not a JSON object");
  SafetensorsEntry entry;
  entry.name = name;
  const auto dtype = j.find("dtype");
  if (dtype == j.end() || !dtype->is_string() || safetensors_dtype_size(dtype->get<std::string>()) == 0)
    fail(path, where + " has dtype " + (dtype == j.end() ? std::string("(none)") : dtype->dump()) +
                   " (supported: F32, F16, BF16, I64, I32)");
  entry.dtype = dtype->get<std::string>();
  const auto shape = j.find("shape");
  if (shape == j.end() || !shape->is_array()) fail(path, where + " has no shape array");
  // The element count is bounded by the data's size at every step, so it cannot overflow.
  uint64_t elements = 1;
  for (const auto& size : *shape) {
    if (!size.is_number_unsigned())  // the JSON reader stores every non-negative integer as unsigned
      fail(path, where + " has shape " + shape->dump() + " (sizes must be non-negative integers)");
    const uint64_t n = size.get<uint64_t>();
    if (n > 0 && elements > data_size / n) fail(path, where + " has shape " + shape->dump() + ", larger than the file");
    elements *= n;
    entry.shape.push_back(static_cast<int64_t>(n));
  }
  const auto offsets = j.find("data_offsets");
  if (offsets == j.end() || !offsets->is_array() || offsets->size() != 2 || !(*offsets)[0].is_number_unsigned() ||
      !(*offsets)[1].is_number_unsigned())
    fail(path, where + " has no data_offsets [begin, end] of non-negative integers");
  entry.begin = (*offsets)[0].get<uint64_t>();
  entry.end = (*offsets)[1].get<uint64_t>();
  if (entry.begin > entry.end || entry.end > data_size)
    fail(path, where + " has data_offsets " + offsets->dump() + " outside the " + std::to_string(data_size) +
                   " bytes of data (truncated file?)");
  const uint64_t expected = elements * safetensors_dtype_size(entry.dtype);  // elements <= data_size
  if (entry.end - entry.begin != expected)
    fail(path, where + " has data_offsets " + offsets->dump() + " for " + std::to_string(expected) + " bytes of " +
                   entry.dtype + " " + shape->dump());
  return entry;
}

}  // namespace

size_t safetensors_dtype_size(const std::string& dtype) {
  if (dtype == "F32" || dtype == "I32") return 4;
  if (dtype == "F16" || dtype == "BF16") return 2;
  if (dtype == "I64") return 8;
  return 0;
}

SafetensorsLayout parse_safetensors_layout(std::string_view head, uint64_t file_size, const std::string& path) {
  if (file_size < 8 || head.size() < 8) fail(path, "shorter than its 8-byte header length");
  uint64_t header_size = 0;
  for (int i = 0; i < 8; ++i) header_size |= static_cast<uint64_t>(static_cast<unsigned char>(head[i])) << (8 * i);
  if (header_size > file_size - 8 || header_size > head.size() - 8)
    fail(path, "header length " + std::to_string(header_size) + " exceeds the file");
  const json header = json::parse(head.begin() + 8, head.begin() + 8 + static_cast<std::ptrdiff_t>(header_size),
                                  nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) fail(path, "header is not a JSON object");
  SafetensorsLayout layout;
  layout.data_start = 8 + header_size;
  const uint64_t data_size = file_size - layout.data_start;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() != "__metadata__") {
      layout.tensors.push_back(parse_entry(it.key(), it.value(), data_size, path));
      continue;
    }
    if (!it->is_object()) fail(path, "__metadata__ is not a JSON object");
    for (auto m = it->begin(); m != it->end(); ++m) {
      if (!m->is_string()) fail(path, "__metadata__ value " + quoted(m.key()) + " is not a string");
      layout.metadata[m.key()] = m->get<std::string>();
    }
  }
  std::vector<const SafetensorsEntry*> order;
  for (const auto& t : layout.tensors) order.push_back(&t);
  check_tiling(std::move(order), data_size, path);
  return layout;
}

SafetensorsLayout read_safetensors_layout(const std::string& path) {
  const MappedFile file = MappedFile::open(path, "safetensors file", "(a file of the checkpoint)");
  const std::string_view bytes(reinterpret_cast<const char*>(file.data()), file.size());
  return parse_safetensors_layout(bytes, path);
}

}  // namespace ssmax
