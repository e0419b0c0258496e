// Pins the TensorBoard encoder (run/tensorboard.h) to the format's fixed points: CRC-32C's check value, TFRecord
// framing, and the scalars a metrics record turns into; and what a resume does to a torn or damaged event file or
// metrics.jsonl. TensorBoard's own reader is run on real event files by tests/cli/tensorboard.sh.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "run/metrics.h"
#include "run/run_paths.h"
#include "run/tensorboard.h"
#include "test_util.h"

namespace ssmax {
namespace {

TEST(TensorBoard, MaskedCrc32cOfTheCheckString) {
  // CRC-32C("123456789") = 0xE3069283 (the catalogue's check value); masked: ((c >> 15) | (c << 17)) + 0xa282ead8.
  EXPECT_EQ(masked_crc32c("123456789"), 0xc78ab0e5u);
}

TEST(TensorBoard, RecordIsLengthCrcDataCrc) {
  const std::string data = "abc";
  const std::string r = tfrecord(data);
  ASSERT_EQ(r.size(), 8u + 4u + data.size() + 4u);
  uint64_t length = 0;
  std::memcpy(&length, r.data(), 8);
  EXPECT_EQ(length, data.size());
  uint32_t length_crc = 0, data_crc = 0;
  std::memcpy(&length_crc, r.data() + 8, 4);
  std::memcpy(&data_crc, r.data() + 12 + data.size(), 4);
  EXPECT_EQ(length_crc, masked_crc32c(r.substr(0, 8)));
  EXPECT_EQ(r.substr(12, data.size()), data);
  EXPECT_EQ(data_crc, masked_crc32c(data));
}

TEST(TensorBoard, ScalarsOfARecord) {
  MetricsRecord train;
  train.step = 10;
  train.train_loss = 2.5;
  train.lr = 1e-3;
  train.grad_norm = 0.75;
  train.normalizer["s"] = {{0.4, 0.5}};
  const auto values = tensorboard_scalars(train);
  ASSERT_EQ(values.size(), 5u);
  EXPECT_EQ(values[0], (std::pair<std::string, double>{"train/loss", 2.5}));
  EXPECT_EQ(values[1], (std::pair<std::string, double>{"train/lr", 1e-3}));
  EXPECT_EQ(values[2], (std::pair<std::string, double>{"train/grad_norm", 0.75}));
  EXPECT_EQ(values[4], (std::pair<std::string, double>{"normalizer/s/layer0/head1", 0.5}));
  MetricsRecord eval;
  eval.step = 10;
  eval.val_loss = 2.4;
  eval.normalizer = train.normalizer;  // evaluation records repeat s: written once per step, with the training record
  const auto eval_values = tensorboard_scalars(eval);
  ASSERT_EQ(eval_values.size(), 1u);
  EXPECT_EQ(eval_values[0].first, "val/loss");
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

TEST(TensorBoard, AResumeCutsATornLastRecordAndKeepsTheWholeOnes) {
  const RunPaths run(test_dir("tb-torn"));
  const std::string whole = tfrecord("first") + tfrecord("second");
  EXPECT_EQ(repair_event_file(run), "");  // no file yet
  write(run.events(), whole);
  EXPECT_EQ(repair_event_file(run), "");
  EXPECT_EQ(slurp(run.events()), whole);
  for (size_t torn : {size_t{7}, size_t{12}, tfrecord("third").size() - 1}) {
    write(run.events(), whole + tfrecord("third").substr(0, torn));
    const std::string warning = repair_event_file(run);
    EXPECT_NE(warning.find(run.events() + ": its last record was torn off mid-write (" + std::to_string(torn) +
                           " bytes at byte " + std::to_string(whole.size()) +
                           "); cut the file back to its 2 whole "
                           "records"),
              std::string::npos)
        << warning;
    EXPECT_EQ(slurp(run.events()), whole);
  }
  EXPECT_FALSE(std::filesystem::exists(run.damaged_events(1)));
}

TEST(TensorBoard, AResumeMovesADamagedEventFileAsideAndKeepsItsWholeRecords) {
  const RunPaths run(test_dir("tb-damaged"));
  const std::string garbage = "not an event file, not even its first record";
  write(run.events(), garbage);
  EXPECT_EQ(repair_event_file(run), run.events() +
                                        ": not a TensorBoard event file from its first byte (no valid record there); "
                                        "moved it to " +
                                        run.damaged_events(1) + " and started a new one");
  EXPECT_FALSE(std::filesystem::exists(run.events()));  // the writer starts it with its file_version record
  EXPECT_EQ(slurp(run.damaged_events(1)), garbage);
  // A changed byte in the second record: the first is kept, in a new file; the damaged one is kept as it was.
  std::string damaged = tfrecord("first") + tfrecord("second") + tfrecord("third");
  damaged[tfrecord("first").size() + 14] ^= 0x20;
  write(run.events(), damaged);
  EXPECT_EQ(repair_event_file(run), run.events() + ": damaged at byte " + std::to_string(tfrecord("first").size()) +
                                        " of " + std::to_string(damaged.size()) +
                                        " (a record's checksum does not match); moved it to " + run.damaged_events(2) +
                                        " and copied its first 1 whole record into a new one");
  EXPECT_EQ(slurp(run.events()), tfrecord("first"));
  EXPECT_EQ(slurp(run.damaged_events(2)), damaged);
  EXPECT_EQ(slurp(run.damaged_events(1)), garbage);
  // Too short to be checked, with nothing whole before it: moved aside as well, not cut to nothing.
  write(run.events(), tfrecord("first").substr(0, 7));
  EXPECT_NE(repair_event_file(run).find("moved it to " + run.damaged_events(3) + " and started a new one"),
            std::string::npos);
  EXPECT_EQ(slurp(run.damaged_events(3)), tfrecord("first").substr(0, 7));
}

TEST(TensorBoard, AResumeCutsATornLastLineOfMetrics) {
  const std::string path = test_dir("metrics-torn") + "/metrics.jsonl";
  EXPECT_EQ(repair_metrics_file(path), "");  // none yet
  const std::string lines = "{\"step\": 1}\n{\"step\": 2}\n";
  write(path, lines);
  EXPECT_EQ(repair_metrics_file(path), "");
  write(path, lines + "{\"step\": 3, \"tr");
  EXPECT_EQ(repair_metrics_file(path), path +
                                           ": its last line was torn off mid-write (15 bytes without a newline); cut "
                                           "it off, so the resumed run's records start on a line of their own");
  EXPECT_EQ(slurp(path), lines);
  write(path, "{\"st");
  EXPECT_NE(repair_metrics_file(path), "");
  EXPECT_EQ(slurp(path), "");
}

}  // namespace
}  // namespace ssmax
