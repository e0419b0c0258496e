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
class RunPaths;

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

// Before a resumed run appends to its event file: the file must end where a whole record ends. TensorBoard's reader
// stops at the first record it cannot read, so whatever followed a torn or damaged one would never be shown.
// Records are checked by their CRCs. A record torn off after whole ones (a crash, a full disk: the file is not
// fsync'ed) is cut off; a file damaged elsewhere, or without a whole record from its first byte, is moved aside to
// run.damaged_events(n) (never deleted) and its whole records before the damage, if any, are copied into a new one.
// Returns the one line of warning that says what was done, empty when the file was whole or absent. Throws
// RuntimeFailure naming the file when it cannot be read, cut or moved.
std::string repair_event_file(const RunPaths& run);

// The bytes of a TFRecord holding `data` (exposed for tests: the CRC against known vectors).
std::string tfrecord(const std::string& data);
uint32_t masked_crc32c(const std::string& bytes);
uint32_t masked_crc32c(const void* bytes, size_t size);

}  // namespace ssmax
