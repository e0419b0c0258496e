// The safetensors layout reader (export/safetensors_header.h), the part of read_safetensors that sees the bytes.
// Property: every tensor it accepts lies inside the file and has exactly its shape's bytes.
#include "export/safetensors_header.h"
#include "fuzz_common.h"

using namespace ssmax;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes = fuzz::as_string(data, size);
  fuzz::expect_result_or_clear_error([&] {
    const SafetensorsLayout layout = parse_safetensors_layout(bytes, "fuzz.safetensors");
    for (const auto& t : layout.tensors) {
      uint64_t elements = 1;
      for (int64_t n : t.shape) elements *= static_cast<uint64_t>(n);
      if (t.begin > t.end || layout.data_start + t.end > bytes.size() ||
          t.end - t.begin != elements * safetensors_dtype_size(t.dtype))
        fuzz::finding("accepted a tensor outside the file or of the wrong size", t.name);
      volatile char last = t.end > t.begin ? bytes[layout.data_start + t.end - 1] : 0;  // ASan checks the range
      (void)last;
    }
  });
  return 0;
}
