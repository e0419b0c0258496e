// Token shards: header, uint16/uint32 ids, damaged files (the util room's files, hash and lock: test_files.cpp).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/shard.h"
#include "test_util.h"
#include "util/errors.h"

namespace ssmax {
namespace {

namespace fs = std::filesystem;

std::string scratch() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return test_dir("shard-" + std::string(info->test_suite_name()) + "." + info->name());
}

void write(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

std::vector<uint32_t> read_all(const TokenShard& shard) {
  std::vector<uint32_t> ids(shard.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = shard.at(i);
  return ids;
}

TEST(ShardTest, RoundTripUint16) {
  const std::string path = scratch() + "/a.bin";
  std::vector<uint32_t> ids;
  for (uint32_t i = 0; i < 5000; ++i) ids.push_back((i * 7919u) % 65536u);
  write_shard(path, ids, 65536);
  EXPECT_EQ(fs::file_size(path), 32u + 2u * ids.size());
  const TokenShard shard = TokenShard::open(path);
  EXPECT_EQ(shard.size(), ids.size());
  EXPECT_EQ(shard.vocab_size(), 65536u);
  EXPECT_EQ(read_all(shard), ids);
  std::vector<int64_t> window(10);
  shard.copy_to(100, 10, window.data());
  for (size_t i = 0; i < 10; ++i) EXPECT_EQ(window[i], static_cast<int64_t>(ids[100 + i]));
}

TEST(ShardTest, RoundTripUint32) {
  const std::string path = scratch() + "/a.bin";
  std::vector<uint32_t> ids;
  for (uint32_t i = 0; i < 5000; ++i) ids.push_back((i * 104729u) % 100000u);
  write_shard(path, ids, 100000);
  EXPECT_EQ(fs::file_size(path), 32u + 4u * ids.size());
  TokenShard shard = TokenShard::open(path);
  TokenShard moved = std::move(shard);
  EXPECT_EQ(moved.vocab_size(), 100000u);
  EXPECT_EQ(read_all(moved), ids);
  std::vector<int64_t> window(3);
  moved.copy_to(4997, 3, window.data());
  EXPECT_EQ(window[2], static_cast<int64_t>(ids[4999]));
}

TEST(ShardTest, EmptyShardAndBadIds) {
  const std::string dir = scratch();
  write_shard(dir + "/empty.bin", {}, 10);
  EXPECT_EQ(TokenShard::open(dir + "/empty.bin").size(), 0u);
  EXPECT_THROW(write_shard(dir + "/bad.bin", {1, 10}, 10), RuntimeFailure);
  EXPECT_FALSE(fs::exists(dir + "/bad.bin"));
}

TEST(ShardTest, BadMagicNamesFile) {
  const std::string path = scratch() + "/train.bin";
  write(path, std::string(64, 'x'));
  const std::string msg = error_of([&] { TokenShard::open(path); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("bad magic"), std::string::npos) << msg;
  EXPECT_THROW(TokenShard::open(path), RuntimeFailure);
}

TEST(ShardTest, WrongVersionNamesFile) {
  const std::string path = scratch() + "/train.bin";
  write_shard(path, {1, 2, 3}, 100);
  std::string bytes = read_file(path);
  bytes[8] = 7;  // version field
  write(path, bytes);
  const std::string msg = error_of([&] { TokenShard::open(path); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("version 7"), std::string::npos) << msg;
}

TEST(ShardTest, TruncatedNamesFileAndSizes) {
  const std::string dir = scratch();
  const std::string path = dir + "/train.bin";
  write_shard(path, std::vector<uint32_t>(100, 5), 100);
  fs::resize_file(path, 32 + 150);
  const std::string msg = error_of([&] { TokenShard::open(path); });
  EXPECT_NE(msg.find(path + ": truncated: header says 100 tokens (232 bytes) but file has 182 bytes"),
            std::string::npos)
      << msg;
  write(dir + "/tiny.bin", "SSMXTOK");
  const std::string tiny = error_of([&] { TokenShard::open(dir + "/tiny.bin"); });
  EXPECT_NE(tiny.find("truncated"), std::string::npos) << tiny;
  EXPECT_THROW(TokenShard::open(dir + "/missing.bin"), RuntimeFailure);
}

// Found by tests/fuzz/fuzz_shard.cpp: a bit flipped in an id was accepted, to index past the embedding mid-run.
TEST(ShardTest, AnIdOutsideTheVocabularyIsFoundAtOpenNamingItsPosition) {
  const std::string dir = scratch();
  const std::string path = dir + "/train.bin";
  write_shard(path, std::vector<uint32_t>(10000, 5), 100);
  {
    std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(32 + 2 * 9000 + 1);
    f.put(static_cast<char>(0x40));  // id 5 becomes 0x4005
  }
  const std::string msg = error_of([&] { TokenShard::open(path); });
  EXPECT_NE(msg.find(path + ": damaged: token id 16389 at position 9000 is outside the vocabulary of 100"),
            std::string::npos)
      << msg;
}

}  // namespace
}  // namespace ssmax
