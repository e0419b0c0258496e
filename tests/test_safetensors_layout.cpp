// The safetensors layout (export/safetensors_header.h): what the reader of a checkpoint's bytes takes, and the
// format's rule that the tensors tile the data (an overlap would load two tensors with the same weights).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "export/safetensors_header.h"
#include "test_util.h"
#include "util/errors.h"
#include "util/files.h"

namespace ssmax {
namespace {
using json = nlohmann::json;

// A safetensors file written by hand: `header` (name → {dtype, shape, data_offsets}) and `data_bytes` zero bytes.
std::string file_with(const json& header, size_t data_bytes) {
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string bytes;
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>((text.size() >> (8 * i)) & 0xff));
  return bytes + text + std::string(data_bytes, '\0');
}

json f32(int64_t n, uint64_t begin) {
  return {{"dtype", "F32"}, {"shape", {n}}, {"data_offsets", {begin, begin + 4 * n}}};
}

TEST(SafetensorsLayout, TensorsMustTileTheDataInAnyOrder) {
  // Offsets in another order than the names, and an empty tensor between two others: the format allows both.
  const json good = {{"a", f32(2, 8)}, {"b", f32(2, 0)}, {"e", f32(0, 8)}};
  EXPECT_EQ(parse_safetensors_layout(file_with(good, 16), "t.safetensors").tensors.size(), 3u);

  const json overlap = {
      {"q", f32(2, 0)}, {"k", f32(2, 4)}, {"v", {{"dtype", "F16"}, {"shape", {2}}, {"data_offsets", {12, 16}}}}};
  EXPECT_EQ(error_of([&] { parse_safetensors_layout(file_with(overlap, 16), "t.safetensors"); }),
            "t.safetensors: tensors 'q' (data bytes [0, 8)) and 'k' (data bytes [4, 12)) overlap: the data must be "
            "the tensors' bytes, each byte in exactly one tensor");
  // Both on the same bytes, as a q_proj pointed at k_proj's would be.
  const json same = {{"q", f32(2, 0)}, {"k", f32(2, 0)}, {"v", f32(2, 8)}};
  EXPECT_NE(error_of([&] { parse_safetensors_layout(file_with(same, 16), "t.safetensors"); }).find("overlap"),
            std::string::npos);
  const json gap = {{"a", f32(2, 0)}, {"b", f32(2, 12)}};
  EXPECT_EQ(error_of([&] { parse_safetensors_layout(file_with(gap, 20), "t.safetensors"); }),
            "t.safetensors: data bytes [8, 12) (before tensor 'b') belong to no tensor: the data must be the tensors' "
            "bytes, each byte in exactly one tensor");
  EXPECT_NE(error_of([&] {
              parse_safetensors_layout(file_with(good, 20), "t.safetensors");
            }).find("t.safetensors: data bytes [16, 20) (at the end of the file) belong to no tensor"),
            std::string::npos);
  // A name that would break the one-line message is escaped.
  const json newline = {{"a\nb", f32(2, 0)}, {"c", f32(2, 0)}};
  EXPECT_EQ(error_of([&] { parse_safetensors_layout(file_with(newline, 8), "t"); }).find('\n'), std::string::npos);
}

TEST(SafetensorsLayout, TheHeaderAloneIsReadFromAFile) {
  const std::string dir = test_dir("safetensors-layout");
  write_file_atomic(dir + "/good.safetensors", file_with({{"a", f32(3, 0)}, {"b", f32(1, 12)}}, 16));
  const SafetensorsLayout layout = read_safetensors_layout(dir + "/good.safetensors");
  ASSERT_EQ(layout.tensors.size(), 2u);
  EXPECT_EQ(layout.tensors[0].shape, std::vector<int64_t>{3});
  EXPECT_EQ(layout.tensors[1].begin, 12u);
  write_file_atomic(dir + "/bad.safetensors", file_with({{"a", f32(3, 0)}, {"b", f32(1, 8)}}, 12));
  EXPECT_NE(error_of([&] {
              read_safetensors_layout(dir + "/bad.safetensors");
            }).find(dir + "/bad.safetensors: tensors 'a' (data bytes [0, 12)) and 'b' (data bytes [8, 12)) overlap"),
            std::string::npos);
}

}  // namespace
}  // namespace ssmax
