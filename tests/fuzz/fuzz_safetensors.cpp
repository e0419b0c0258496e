// The safetensors layout reader (export/safetensors_header.h), the part of read_safetensors that sees the bytes.
// Property: every tensor it accepts lies inside the file and has exactly its shape's bytes, and together they tile the
// data (no byte in two tensors or in none).
#include <algorithm>
#include <utility>

#include "export/safetensors_header.h"
#include "fuzz_common.h"

using namespace ssmax;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes = fuzz::as_string(data, size);
  fuzz::expect_result_or_clear_error([&] {
    const SafetensorsLayout layout = parse_safetensors_layout(bytes, "fuzz.safetensors");
    std::vector<std::pair<uint64_t, uint64_t>> ranges;
    for (const auto& t : layout.tensors) {
      ranges.emplace_back(t.begin, t.end);
      uint64_t elements = 1;
      for (int64_t n : t.shape) elements *= static_cast<uint64_t>(n);
      if (t.begin > t.end || layout.data_start + t.end > bytes.size() ||
          t.end - t.begin != elements * safetensors_dtype_size(t.dtype))
        fuzz::finding("accepted a tensor outside the file or of the wrong size", t.name);
      volatile char last = t.end > t.begin ? bytes[layout.data_start + t.end - 1] : 0;  // ASan checks the range
      (void)last;
    }
    std::sort(ranges.begin(), ranges.end());
    uint64_t covered = 0;
    for (const auto& [begin, end] : ranges) {
      if (begin != covered) fuzz::finding("accepted tensors that overlap or leave a gap", std::to_string(begin));
      covered = end;
    }
    if (layout.data_start + covered != bytes.size()) fuzz::finding("accepted data that no tensor holds", "");
  });
  return 0;
}
