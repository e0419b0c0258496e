#include "run/tensorboard.h"

#include <boost/crc.hpp>

#include <chrono>
#include <cstring>
#include <filesystem>

#include "config/normalizer_kind.h"
#include "run/metrics.h"

namespace ssmax {
namespace {

// Protobuf's wire format: a field is a varint key (number << 3 | wire type) and its value; wire types used here:
// 0 varint, 1 fixed 64-bit, 2 length-delimited, 5 fixed 32-bit (all little-endian).
void varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void key(std::string& out, int field, int wire_type) { varint(out, static_cast<uint64_t>(field) << 3 | wire_type); }
template <typename T>
void fixed(std::string& out, T v) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));  // x86-64 and aarch64 are little-endian, as the format is
  out.append(bytes, sizeof(T));
}
void bytes_field(std::string& out, int field, const std::string& bytes) {
  key(out, field, 2);
  varint(out, bytes.size());
  out += bytes;
}

// tensorflow.Event: wall_time = 1 (double), step = 2 (int64), file_version = 3 (string), summary = 5 (Summary);
// Summary: value = 1 (repeated Value); Summary.Value: tag = 1 (string), simple_value = 2 (float).
std::string event(double wall_time, int64_t step) {
  std::string e;
  key(e, 1, 1);
  fixed(e, wall_time);
  key(e, 2, 0);
  varint(e, static_cast<uint64_t>(step));
  return e;
}

double now() { return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count(); }

}  // namespace

uint32_t masked_crc32c(const std::string& bytes) {
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;  // CRC-32C (Castagnoli)
  crc.process_bytes(bytes.data(), bytes.size());
  const uint32_t c = crc.checksum();
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;  // TFRecord's mask
}

std::string tfrecord(const std::string& data) {
  std::string length, out;
  fixed(length, static_cast<uint64_t>(data.size()));
  out = length;
  fixed(out, masked_crc32c(length));
  out += data;
  fixed(out, masked_crc32c(data));
  return out;
}

TensorBoardWriter::TensorBoardWriter(const std::string& path)
    : path_(path), out_(path, std::ios::app | std::ios::binary) {
  std::error_code error;
  if (out_ && std::filesystem::file_size(path, error) == 0 && !error) {
    std::string e = event(now(), 0);
    bytes_field(e, 3, "brain.Event:2");
    record(e);
  }
}

void TensorBoardWriter::scalars(int64_t step, const std::vector<std::pair<std::string, double>>& values) {
  if (values.empty()) return;
  std::string summary;
  for (const auto& [tag, value] : values) {
    std::string v;
    bytes_field(v, 1, tag);
    key(v, 2, 5);
    fixed(v, static_cast<float>(value));
    bytes_field(summary, 1, v);
  }
  std::string e = event(now(), step);
  bytes_field(e, 5, summary);
  record(e);
}

void TensorBoardWriter::record(const std::string& e) {
  out_ << tfrecord(e);
  out_.flush();
}

std::vector<std::pair<std::string, double>> tensorboard_scalars(const MetricsRecord& r) {
  std::vector<std::pair<std::string, double>> values;
  auto add = [&](const char* tag, const std::optional<double>& v) {
    if (v) values.emplace_back(tag, *v);
  };
  add("train/loss", r.train_loss);
  add("val/loss", r.val_loss);
  if (r.train_loss) values.emplace_back("train/lr", r.lr);
  add("train/grad_norm", r.grad_norm);
  add("train/tokens_per_s", r.tokens_per_s);
  add("train/mfu", r.mfu);
  if (!r.train_loss) return values;  // s and b once per step: evaluation records repeat the training record's
  for (const char* name : kNormalizerParameters) {
    const auto& per_layer = r.parameter(name);
    for (size_t layer = 0; layer < per_layer.size(); ++layer)
      for (size_t head = 0; head < per_layer[layer].size(); ++head)
        values.emplace_back(
            "normalizer/" + std::string(name) + "/layer" + std::to_string(layer) + "/head" + std::to_string(head),
            per_layer[layer][head]);
  }
  return values;
}

}  // namespace ssmax
