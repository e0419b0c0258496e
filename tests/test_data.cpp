// Data pipeline: token shards, the sentencepiece tokenizer (through the dlopen()ed shim), prepare.
// Every test writes its own small, deterministic text into a fresh directory.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "data/prepare.h"
#include "data/shard.h"
#include "data/tokenizer.h"
#include "test_util.h"
#include "util/errors.h"
#include "util/hash.h"

namespace ssmax {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test under $SSMAX_TEST_TMP (set by ctest) or /tmp, removed when the test
// passes and kept for a look when it fails.
class TestDir {
 public:
  TestDir() {
    const char* base = std::getenv("SSMAX_TEST_TMP");
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = (fs::path(base && *base ? base : "/tmp") / ("ssmax-data-" + std::string(info->test_suite_name()) + "." +
                                                        info->name() + "-" + std::to_string(::getpid())))
                .string();
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TestDir() {
    std::error_code ec;
    if (!::testing::Test::HasFailure()) fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void write(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// About `bytes` of English-like lines from a fixed word list; same seed, same text.
std::string make_text(size_t bytes, uint64_t seed = 1) {
  static const char* words[] = {
      "the",  "and",   "of",   "to",    "in",       "that",  "he",    "shall", "unto",  "for",  "his",   "lord", "they",
      "be",   "is",    "him",  "not",   "them",     "with",  "all",   "thou",  "thy",   "was",  "which", "my",   "said",
      "café", "naïve", "over", "river", "mountain", "light", "water", "Day",   "Night", "King", "3",     "40"};
  constexpr size_t n_words = sizeof words / sizeof *words;
  std::string text;
  uint64_t state = seed * 0x9e3779b97f4a7c15ULL + 1;
  auto next = [&state] { return (state = state * 6364136223846793005ULL + 1442695040888963407ULL) >> 33; };
  while (text.size() < bytes) {
    const int n = 4 + static_cast<int>(next() % 12);
    for (int i = 0; i < n; ++i) {
      if (i) text += next() % 50 == 0 ? "  " : " ";  // occasional double space
      text += words[next() % n_words];
    }
    text += next() % 3 == 0 ? ".\n" : ",\n";
  }
  return text;
}

DataConfig small_config(const std::string& dir, const std::string& source) {
  DataConfig data;
  data.sources = {source};
  data.dataset_dir = dir + "/cache";
  data.tokenizer.vocab_size = 400;
  data.val_fraction = 0.1;
  return data;
}

std::vector<uint32_t> read_all(const TokenShard& shard) {
  std::vector<uint32_t> ids(shard.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = shard.at(i);
  return ids;
}

TEST(TokenizerTest, RoundTripsTextExactly) {
  const TestDir tmp;
  const std::string& dir = tmp.path();
  write(dir + "/corpus.txt", make_text(60000));
  train_tokenizer({dir + "/corpus.txt", dir + "/tok", 400, "bpe"});
  const Tokenizer tok = Tokenizer::load(dir + "/tok.model");
  EXPECT_EQ(tok.vocab_size(), 400);
  const std::vector<std::string> samples = {"the lord said unto him,\n",
                                            "  leading spaces, trailing  \n\n\nand  double  spaces\n",
                                            "digits 0123456789 and 3.14159\ttab\r\nCRLF\n",
                                            "unicode: café naïve é 漢字 🙂 — never seen in training\n",
                                            " ",
                                            "\n",
                                            ""};
  for (const auto& s : samples) {
    const auto ids = tok.encode(s);
    for (uint32_t id : ids) EXPECT_LT(id, 400u);
    EXPECT_EQ(tok.decode(ids), s);
  }
  // Pieces are encoded separately in prepare: their concatenation must decode to the joined text.
  auto ab = tok.encode(samples[0]);
  const auto b = tok.encode(samples[1]);
  ab.insert(ab.end(), b.begin(), b.end());
  EXPECT_EQ(tok.decode(ab), samples[0] + samples[1]);
  // Compression: a trained vocabulary must do better than one token per byte on its own text.
  const std::string text = make_text(5000, 9);
  EXPECT_LT(tok.encode(text).size(), text.size() / 2);
}

TEST(TokenizerTest, TrainingIsDeterministic) {
  const TestDir tmp;
  const std::string& dir = tmp.path();
  write(dir + "/corpus.txt", make_text(50000));
  for (const std::string type : {"bpe", "unigram"}) {
    const int vocab = type == "bpe" ? 400 : 320;  // unigram cannot fill 400 from this little text
    train_tokenizer({dir + "/corpus.txt", dir + "/a_" + type, vocab, type});
    train_tokenizer({dir + "/corpus.txt", dir + "/b_" + type, vocab, type});
    // Compared as a hash: a mismatch would otherwise print two binary models in full.
    EXPECT_EQ(hash_file(dir + "/a_" + type + ".model"), hash_file(dir + "/b_" + type + ".model")) << type;
  }
}

TEST(TokenizerTest, BadInputsThrowNamingTheFile) {
  const TestDir tmp;
  const std::string& dir = tmp.path();
  const std::string missing = error_of([&] { Tokenizer::load(dir + "/nope.model"); });
  EXPECT_NE(missing.find(dir + "/nope.model"), std::string::npos) << missing;
  write(dir + "/junk.model", "this is not a model");
  EXPECT_THROW(Tokenizer::load(dir + "/junk.model"), RuntimeFailure);
  // What is wrong with the file, not where in sentencepiece's source the check failed.
  EXPECT_EQ(error_of([&] { Tokenizer::load(dir + "/junk.model"); }),
            dir + "/junk.model: not a usable sentencepiece model: its bytes do not parse as one (a damaged file, or "
                  "not a sentencepiece .model file)");
  write(dir + "/corpus.txt", make_text(20000));
  // Too small a vocabulary for byte fallback plus every character: sentencepiece refuses.
  const std::string tiny = error_of([&] { train_tokenizer({dir + "/corpus.txt", dir + "/t", 50, "bpe"}); });
  EXPECT_NE(tiny.find("vocab_size=50"), std::string::npos) << tiny;
  // The schema refuses an unknown model type in a config (ConfigSchema tests); one that gets here anyway fails
  // in sentencepiece, named.
  const std::string type = error_of([&] { train_tokenizer({dir + "/corpus.txt", dir + "/t", 400, "wordpiece"}); });
  EXPECT_NE(type.find("model_type=wordpiece"), std::string::npos) << type;
}

TEST(PrepareTest, SecondCallReusesWithoutRewriting) {
  const TestDir tmp;
  const std::string& dir = tmp.path();
  write(dir + "/src.txt", make_text(100000));
  const DataConfig data = small_config(dir, dir + "/src.txt");
  const PreparedDataset first = prepare_dataset(data);
  EXPECT_FALSE(first.reused);
  EXPECT_EQ(first.vocab_size, 400);
  EXPECT_EQ(first.dir, data.dataset_dir + "/" + fs::path(first.dir).filename().string());
  EXPECT_EQ(fs::path(first.dir).filename().string().size(), 16u);
  EXPECT_GT(first.unigram_entropy_nats, 1.0);
  EXPECT_LT(first.unigram_entropy_nats, std::log(400.0));

  std::map<std::string, fs::file_time_type> mtimes;
  for (const auto& e : fs::directory_iterator(first.dir)) mtimes[e.path().string()] = e.last_write_time();
  const PreparedDataset second = prepare_dataset(data);
  EXPECT_TRUE(second.reused);
  EXPECT_EQ(second.dir, first.dir);
  EXPECT_EQ(second.fingerprint, first.fingerprint);
  EXPECT_EQ(second.train_tokens, first.train_tokens);
  std::map<std::string, fs::file_time_type> after;
  for (const auto& e : fs::directory_iterator(first.dir)) after[e.path().string()] = e.last_write_time();
  EXPECT_EQ(after, mtimes);
  // Only the finished dataset (and its quick-check record) is left in the cache directory: no build leftovers.
  std::vector<std::string> entries;
  for (const auto& e : fs::directory_iterator(data.dataset_dir)) entries.push_back(e.path().filename().string());
  std::sort(entries.begin(), entries.end());
  EXPECT_EQ(entries, (std::vector<std::string>{".quick", fs::path(first.dir).filename().string()}));

  // Touched (new modification time, same bytes): the quick check misses, the content key finds the dataset.
  fs::last_write_time(dir + "/src.txt", fs::last_write_time(dir + "/src.txt") + std::chrono::seconds(5));
  const PreparedDataset touched = prepare_dataset(data);
  EXPECT_TRUE(touched.reused);
  EXPECT_EQ(touched.dir, first.dir);

  write(dir + "/src.txt", make_text(100000) + "one more line\n");
  const PreparedDataset changed = prepare_dataset(data);
  EXPECT_FALSE(changed.reused);
  EXPECT_NE(changed.dir, first.dir);
  EXPECT_NE(changed.fingerprint, first.fingerprint);
}

TEST(PrepareTest, SplitIsDeterministicSpreadAndNonEmpty) {
  const TestDir tmp;
  const std::string& dir = tmp.path();
  const std::string corpus = make_text(150000, 3);
  write(dir + "/src.txt", corpus);
  DataConfig a = small_config(dir, dir + "/src.txt");
  DataConfig b = a;
  b.dataset_dir = dir + "/cache2";
  const PreparedDataset da = prepare_dataset(a);
  const PreparedDataset db = prepare_dataset(b);  // built again from scratch, elsewhere
  EXPECT_FALSE(db.reused);
  EXPECT_EQ(da.fingerprint, db.fingerprint);
  EXPECT_EQ(slurp(da.train_shards.at(0)), slurp(db.train_shards.at(0)));
  EXPECT_EQ(slurp(da.val_shards.at(0)), slurp(db.val_shards.at(0)));
  EXPECT_FALSE(fs::exists(da.dir + "/corpus.txt"));  // the cache holds no copy of the corpus
  ASSERT_GT(da.train_tokens, 0u);
  ASSERT_GT(da.val_tokens, 0u);
  const double share = double(da.val_tokens) / double(da.train_tokens + da.val_tokens);
  EXPECT_GT(share, 0.04);
  EXPECT_LT(share, 0.2);
  // Val text is whole lines of the corpus, and train + val together hold all of it.
  const Tokenizer tok = Tokenizer::load(da.tokenizer_model);
  const std::string val = tok.decode(read_all(TokenShard::open(da.val_shards.at(0))));
  const std::string train = tok.decode(read_all(TokenShard::open(da.train_shards.at(0))));
  EXPECT_EQ(train.size() + val.size(), corpus.size());
  EXPECT_EQ(val.back(), '\n');
  EXPECT_NE(corpus.find(val.substr(0, val.find('\n') + 1)), std::string::npos);
}

TEST(PrepareTest, DirectorySourcesAreSortedAndJoined) {
  const TestDir tmp;
  const std::string& dir = tmp.path();
  fs::create_directories(dir + "/texts/sub");
  fs::create_directories(dir + "/texts/.hidden");
  const std::string body = make_text(40000, 5);
  write(dir + "/texts/b.txt", body);
  write(dir + "/texts/a.txt", "first file without newline");
  write(dir + "/texts/sub/c.txt", "last\n");
  write(dir + "/texts/empty.txt", "");
  write(dir + "/texts/.hidden/x.txt", "hidden\n");
  DataConfig data = small_config(dir, dir + "/texts");
  data.dataset_dir = dir + "/texts/cache";  // inside the source tree: must not be read back
  const PreparedDataset ds = prepare_dataset(data);
  // Each file is its own document (pieces never join two), so compare the lines the shards hold.
  const Tokenizer tok = Tokenizer::load(ds.tokenizer_model);
  EXPECT_EQ(sorted_lines(tok.decode(read_all(TokenShard::open(ds.train_shards.at(0)))) +
                         tok.decode(read_all(TokenShard::open(ds.val_shards.at(0))))),
            sorted_lines("first file without newline\n" + body + "last\n"));
  EXPECT_TRUE(prepare_dataset(data).reused);
}

// data.prepared: a dataset carried without its corpus (the GPU study's bundle) is used as it is; sources unread.
TEST(PrepareTest, APreparedDirectoryIsUsedWithoutItsSources) {
  const TestDir tmp;
  const std::string& dir = tmp.path();
  write(dir + "/src.txt", make_text(60000, 3));
  DataConfig data = small_config(dir, dir + "/src.txt");
  const PreparedDataset built = prepare_dataset(data);
  fs::remove(dir + "/src.txt");
  DataConfig carried;
  carried.sources = {dir + "/src.txt"};  // gone: not read
  carried.dataset_dir = dir + "/elsewhere";
  carried.prepared = built.dir;
  const PreparedDataset used = prepare_dataset(carried);
  EXPECT_EQ(used.fingerprint, built.fingerprint);
  EXPECT_EQ(used.train_shards, built.train_shards);
  EXPECT_EQ(used.vocab_size, built.vocab_size);
  EXPECT_FALSE(fs::exists(dir + "/elsewhere"));
  // A given tokenizer (train --init-from gives one) must be the one it was encoded with: the same bytes, wherever.
  fs::copy_file(built.tokenizer_model, dir + "/same.model");
  carried.tokenizer.model = dir + "/same.model";
  EXPECT_EQ(prepare_dataset(carried).fingerprint, built.fingerprint);
  write(dir + "/other.model", "another tokenizer");
  carried.tokenizer.model = dir + "/other.model";
  EXPECT_EQ(error_of([&] { prepare_dataset(carried); }),
            "data.prepared = '" + built.dir + "' was encoded with " + built.tokenizer_model +
                ", another tokenizer than data.tokenizer.model = '" + dir +
                "/other.model' (their contents differ, so its ids mean other pieces); leave data.prepared empty to "
                "prepare data.sources with that tokenizer");
  carried.tokenizer.model = "";
  carried.prepared = dir + "/no-such-dataset";
  const std::string message = error_of([&] { prepare_dataset(carried); });
  EXPECT_NE(message.find("data.prepared = '" + dir + "/no-such-dataset': no such directory"), std::string::npos)
      << message;
}

TEST(PrepareTest, GivenTokenizerModelIsUsed) {
  const TestDir tmp;
  const std::string& dir = tmp.path();
  write(dir + "/src.txt", make_text(60000, 7));
  train_tokenizer({dir + "/src.txt", dir + "/mine", 350, "bpe"});
  DataConfig data = small_config(dir, dir + "/src.txt");
  data.tokenizer.model = dir + "/mine.model";
  const PreparedDataset ds = prepare_dataset(data);  // 350 != vocab_size 400: a warning, not an error
  EXPECT_EQ(ds.vocab_size, 350);
  EXPECT_EQ(slurp(ds.tokenizer_model), slurp(dir + "/mine.model"));
  EXPECT_EQ(TokenShard::open(ds.train_shards.at(0)).vocab_size(), 350u);

  // A corpus of a few lines still gets both splits (smaller pieces); a single line cannot.
  write(dir + "/tiny.txt", "the lord said,\nunto him.\nlight and water\n");
  data.sources = {dir + "/tiny.txt"};
  const PreparedDataset tiny = prepare_dataset(data);
  EXPECT_GT(tiny.train_tokens, 0u);
  EXPECT_GT(tiny.val_tokens, 0u);
  write(dir + "/one.txt", "just one line without an end");
  data.sources = {dir + "/one.txt"};
  EXPECT_THROW(prepare_dataset(data), UsageError);
}

TEST(PrepareTest, MissingEmptyAndBadSettingsAreUsageErrors) {
  const TestDir tmp;
  const std::string& dir = tmp.path();
  const std::string missing = error_of([&] { prepare_dataset(small_config(dir, dir + "/nowhere.txt")); });
  EXPECT_NE(missing.find("data.sources: '" + dir + "/nowhere.txt' does not exist"), std::string::npos) << missing;
  EXPECT_THROW(prepare_dataset(small_config(dir, dir + "/nowhere.txt")), UsageError);

  write(dir + "/empty.txt", "");
  const std::string empty = error_of([&] { prepare_dataset(small_config(dir, dir + "/empty.txt")); });
  EXPECT_NE(empty.find(dir + "/empty.txt"), std::string::npos) << empty;
  EXPECT_THROW(prepare_dataset(small_config(dir, dir + "/empty.txt")), UsageError);
  fs::create_directories(dir + "/emptydir");
  EXPECT_THROW(prepare_dataset(small_config(dir, dir + "/emptydir")), UsageError);

  write(dir + "/src.txt", make_text(1000));
  DataConfig bad = small_config(dir, dir + "/src.txt");
  bad.val_fraction = 0.7;
  EXPECT_THROW(prepare_dataset(bad), UsageError);
  bad.val_fraction = 0;
  EXPECT_THROW(prepare_dataset(bad), UsageError);
  bad.val_fraction = 0.1;
  bad.tokenizer.vocab_size = 260;  // fewer than byte pieces + characters
  const std::string small = error_of([&] { prepare_dataset(bad); });
  EXPECT_NE(small.find("data.tokenizer.vocab_size: 260 does not suit this corpus"), std::string::npos) << small;
  EXPECT_THROW(prepare_dataset(bad), UsageError);
  // A failed build leaves nothing that looks like a dataset.
  EXPECT_FALSE(fs::exists(dir + "/cache") && !fs::is_empty(dir + "/cache"));
}

TEST(PrepareTest, VocabMismatchIsDetected) {
  const TestDir tmp;
  const std::string& dir = tmp.path();
  write(dir + "/src.txt", make_text(60000, 11));
  const PreparedDataset ds = prepare_dataset(small_config(dir, dir + "/src.txt"));
  EXPECT_EQ(load_prepared_dataset(ds.dir).fingerprint, ds.fingerprint);
  write_shard(ds.train_shards.at(0), {1, 2, 3}, 512);
  const std::string msg = error_of([&] { load_prepared_dataset(ds.dir); });
  EXPECT_NE(msg.find("tokenizer/shard vocabulary mismatch"), std::string::npos) << msg;
  EXPECT_NE(msg.find("400"), std::string::npos) << msg;
  EXPECT_NE(msg.find("512"), std::string::npos) << msg;
  EXPECT_NE(msg.find(ds.train_shards.at(0)), std::string::npos) << msg;
  EXPECT_THROW(load_prepared_dataset(dir + "/not-a-dataset"), RuntimeFailure);
}

}  // namespace
}  // namespace ssmax
