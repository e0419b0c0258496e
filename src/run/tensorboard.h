#pragma once
// TensorBoard event files, so a run can be watched live where users already watch runs: `tensorboard --logdir runs/`
// shows every run directory as a run. The trainer's metrics writer (run/metrics.h) writes each record here too,
// flushed as it is written; metrics.jsonl stays the program's own record.
//
// Format (what tf.summary and torch.utils.tensorboard write): TFRecord framing — little-endian uint64 length, its
// masked CRC-32C, the bytes, their masked CRC-32C (Boost.CRC) — around tensorflow.Event protobuf messages. Only the
// few fields scalars need are encoded, by hand, in protobuf's wire format (see tensorboard.cpp): linking Debian's
// libprotobuf beside LibTorch and sentencepiece is what ../shared/toolchain-notes.md warns against.
#include <cstdint>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace ssmax {

struct MetricsRecord;

class TensorBoardWriter {
 public:
  // Appends to `path`; a new or empty file starts with the file_version event TensorBoard expects.
  explicit TensorBoardWriter(const std::string& path);
  // One event at `step`, stamped with the wall-clock time, holding these scalars (tag, value); flushed.
  void scalars(int64_t step, const std::vector<std::pair<std::string, double>>& values);
  bool ok() const { return static_cast<bool>(out_); }

 private:
  void record(const std::string& event);
  std::string path_;
  std::ofstream out_;
};

// The record's scalars as TensorBoard tags: train/loss, val/loss, train/lr, train/grad_norm, train/tokens_per_s,
// train/mfu, normalizer/s/layer{i}/head{j}, normalizer/b/… .
std::vector<std::pair<std::string, double>> tensorboard_scalars(const MetricsRecord& record);

// The bytes of a TFRecord holding `data` (exposed for tests: the CRC against known vectors).
std::string tfrecord(const std::string& data);
uint32_t masked_crc32c(const std::string& bytes);

}  // namespace ssmax
