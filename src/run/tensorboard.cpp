#include "run/tensorboard.h"

#include <boost/crc.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "config/normalizer_kind.h"
#include "run/metrics.h"
#include "run/run_paths.h"
#include "util/errors.h"
#include "util/files.h"

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

// How far an event file holds whole records, each checked by its two CRCs.
struct RecordScan {
  uint64_t whole_bytes = 0;  // where the last whole record ends
  uint64_t records = 0;
  bool torn = false;  // the bytes after whole_bytes are the start of a record the file ends inside
};

RecordScan scan_records(const unsigned char* bytes, uint64_t size) {
  RecordScan scan;
  uint64_t at = 0;
  while (at < size) {
    const uint64_t left = size - at;
    if (left < 12) {  // not even a length and its CRC
      scan.torn = true;
      break;
    }
    uint64_t length = 0;
    uint32_t length_crc = 0, data_crc = 0;
    std::memcpy(&length, bytes + at, 8);
    std::memcpy(&length_crc, bytes + at + 8, 4);
    if (length_crc != masked_crc32c(bytes + at, 8)) break;
    if (left < 16 || length > left - 16) {
      scan.torn = true;
      break;
    }
    std::memcpy(&data_crc, bytes + at + 12 + length, 4);
    if (data_crc != masked_crc32c(bytes + at + 12, length)) break;
    at += 16 + length;
    ++scan.records;
  }
  scan.whole_bytes = at;
  return scan;
}

}  // namespace

uint32_t masked_crc32c(const void* bytes, size_t size) {
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;  // CRC-32C (Castagnoli)
  crc.process_bytes(bytes, size);
  const uint32_t c = crc.checksum();
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;  // TFRecord's mask
}

uint32_t masked_crc32c(const std::string& bytes) { return masked_crc32c(bytes.data(), bytes.size()); }

std::string repair_event_file(const RunPaths& run) {
  namespace fs = std::filesystem;
  const std::string path = run.events();
  std::error_code error;
  if (!fs::is_regular_file(path, error)) return "";
  RecordScan scan;
  uint64_t size = 0;
  std::string whole;  // the whole records, when they must go into a new file
  {
    const MappedFile file = MappedFile::open(path, "TensorBoard event file", "");
    size = file.size();
    scan = scan_records(file.data(), size);
    if (scan.whole_bytes < size && !scan.torn)
      whole.assign(reinterpret_cast<const char*>(file.data()), scan.whole_bytes);
  }
  const std::string records = std::to_string(scan.records) + " whole record" + (scan.records == 1 ? "" : "s");
  if (scan.whole_bytes == size) return "";
  if (scan.torn && scan.whole_bytes > 0) {
    fs::resize_file(path, scan.whole_bytes, error);
    if (error) throw RuntimeFailure(path + ": cannot cut off its torn last record: " + error.message());
    return path + ": its last record was torn off mid-write (" + std::to_string(size - scan.whole_bytes) +
           " bytes at byte " + std::to_string(scan.whole_bytes) + "); cut the file back to its " + records +
           ", the resumed run's records follow them";
  }
  // Nothing whole at all is moved aside too, even a few bytes of a torn first record: they may be a user's file.
  int n = 1;
  while (fs::exists(run.damaged_events(n), error)) ++n;
  const std::string aside = run.damaged_events(n);
  if (::rename(path.c_str(), aside.c_str()) != 0)
    throw RuntimeFailure(path + ": damaged, and cannot be moved to " + aside + ": " + errno_text());
  if (scan.whole_bytes == 0)
    return path + ": not a TensorBoard event file from its first byte (no valid record there); moved it to " + aside +
           " and started a new one";
  write_file_atomic(path, whole);
  return path + ": damaged at byte " + std::to_string(scan.whole_bytes) + " of " + std::to_string(size) +
         " (a record's checksum does not match); moved it to " + aside + " and copied its first " + records +
         " into a new one";
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
