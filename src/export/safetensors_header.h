#pragma once
// The layout of a safetensors file (u64 little-endian header length N | N bytes of JSON header | raw data), read
// and checked without torch: every reader of outside bytes here is fuzzed (tests/fuzz/), and this is the part of
// export/safetensors.h that sees them.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace ssmax {

struct SafetensorsEntry {
  std::string name;
  std::string dtype;  // F32, F16, BF16, I64 or I32
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range relative to the start of the data
};

struct SafetensorsLayout {
  std::vector<SafetensorsEntry> tensors;  // in header order
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // offset of the data in the file
};

// Bytes per element of a dtype name the reader supports; 0 for any other.
size_t safetensors_dtype_size(const std::string& dtype);

// Parses and checks the header of a file of `file_size` bytes whose first bytes are `head` (the whole file, or at
// least its 8 + N header bytes): a JSON object; string metadata; each tensor an object with a supported dtype, a
// shape of non-negative sizes and data offsets [begin, end] whose length matches the shape; and, as the format
// requires, the tensors' ranges tile the data exactly: no byte in two tensors (two tensors would read the same
// weights), none in no tensor, the last ending at the end of the file. Throws RuntimeFailure naming `path` and what
// is wrong (both tensors of an overlap, the byte range of a gap).
SafetensorsLayout parse_safetensors_layout(std::string_view head, uint64_t file_size, const std::string& path);
inline SafetensorsLayout parse_safetensors_layout(std::string_view bytes, const std::string& path) {
  return parse_safetensors_layout(bytes, bytes.size(), path);
}

// The header of the file at `path`, checked as above, without reading its data (the file is mapped, and only the
// header's pages are touched): cheap for a checkpoint of any size.
SafetensorsLayout read_safetensors_layout(const std::string& path);

}  // namespace ssmax
