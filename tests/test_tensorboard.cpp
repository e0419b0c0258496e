// Pins the TensorBoard encoder (run/tensorboard.h) to the format's fixed points: CRC-32C's check value, TFRecord
// framing, and the scalars a metrics record turns into. TensorBoard's own reader is run on real event files by
// tests/cli/tensorboard.sh.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "run/metrics.h"
#include "run/tensorboard.h"

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

}  // namespace
}  // namespace ssmax
