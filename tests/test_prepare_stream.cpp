// Streaming prepare: pieces cut while streaming, the tokenizer's bounded sample, shards read back as one stream
// (uint16 and uint32, windows across shard boundaries), and the whole token stream of a generated ~50 MB corpus
// (plain text, JSON Lines, gzip of both, 40 files) against a straightforward in-memory encoding of the same text.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/corpus_split.h"
#include "data/dataset_cache.h"
#include "data/loader.h"
#include "data/prepare.h"
#include "data/token_stream.h"
#include "data/tokenizer.h"
#include "data/tokenizer_sample.h"
#include "test_util.h"
#include "util/errors.h"

namespace ssmax {
namespace {

namespace fs = std::filesystem;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string lines_text(int lines, unsigned seed) {
  std::mt19937 rng(seed);
  std::string text;
  for (int i = 0; i < lines; ++i) {
    const int words = 1 + static_cast<int>(rng() % 30);
    for (int w = 0; w < words; ++w) text += (w ? " " : "") + std::to_string(rng() % 1000) + "x";
    text += '\n';
  }
  return text;
}

TEST(PieceCutter, StreamedInAnyBlocksCutsLikeTheWholeText) {
  const std::vector<std::string> docs = {lines_text(3000, 1), "short\n", lines_text(10, 2), lines_text(800, 3)};
  for (size_t piece_bytes : {size_t{1}, size_t{100}, size_t{4096}, kMaxPieceBytes}) {
    std::vector<std::string> expected, got;
    for (const auto& doc : docs)
      for (auto& p : cut_document(doc, piece_bytes)) expected.push_back(p);
    std::vector<bool> got_ends, expected_ends;
    for (const auto& doc : docs) {
      const size_t n = cut_document(doc, piece_bytes).size();
      for (size_t i = 0; i < n; ++i) expected_ends.push_back(i + 1 == n);
    }
    PieceCutter cutter(piece_bytes, [&](std::string_view p, bool end) {
      got.emplace_back(p);
      got_ends.push_back(end);
    });
    std::mt19937 rng(static_cast<unsigned>(piece_bytes));
    for (const auto& doc : docs) {
      for (size_t at = 0; at < doc.size();) {
        const size_t n = std::min<size_t>(doc.size() - at, 1 + rng() % 9000);
        cutter.add(std::string_view(doc).substr(at, n), false);
        at += n;
      }
      cutter.add({}, true);
    }
    EXPECT_EQ(got, expected) << "piece_bytes " << piece_bytes;
    EXPECT_EQ(got_ends, expected_ends) << "piece_bytes " << piece_bytes;
  }
  EXPECT_EQ(split_period(0.05), 20u);
  EXPECT_EQ(split_period(0.5), 2u);
  EXPECT_TRUE(is_validation_piece(19, 20));
  EXPECT_FALSE(is_validation_piece(20, 20));
  EXPECT_EQ(piece_bytes_for(4'000'000'000ull, 0.05), kMaxPieceBytes);
  EXPECT_EQ(piece_bytes_for(8000, 0.05), 100u);
}

TEST(LineSample, KeepsACorpusThatFitsWholeAndInOrder) {
  const std::string dir = test_dir("sample-whole");
  const std::string text = lines_text(2000, 4) + "\n\nlast line without newline";
  LineSample sample(10'000'000);
  for (size_t at = 0; at < text.size(); at += 777) sample.add(std::string_view(text).substr(at, 777));
  sample.finish();
  sample.write(dir + "/s.txt");
  EXPECT_TRUE(sample.whole());
  EXPECT_EQ(slurp(dir + "/s.txt"), text + "\n");
  EXPECT_EQ(sample.lines_seen(), 2003u);
}

TEST(LineSample, ABigCorpusGivesABoundedDeterministicSampleOfItsLines) {
  const std::string dir = test_dir("sample-bounded");
  const std::string text = lines_text(40000, 5);  // ~2.5 MB
  // A 40 KB line of 3-byte characters: cut into pieces of at most 16 KiB, never inside a character; of them it gives
  // a tenth of the budget, one piece.
  std::string long_line;
  while (long_line.size() < 40000) long_line += "\xe2\x82\xac";  // U+20AC
  const uint64_t budget = 200'000;
  for (const char* name : {"a", "b"}) {
    LineSample sample(budget);
    sample.add(text);
    sample.add(long_line + "\n");
    sample.finish();
    sample.write(dir + "/" + name);
    EXPECT_FALSE(sample.whole());
    EXPECT_LE(sample.bytes_kept() + 64 * sample.lines_kept(), budget);
    EXPECT_GT(sample.bytes_kept() + 64 * sample.lines_kept(), budget * 9 / 10);
    EXPECT_EQ(sample.lines_seen(), 40000u + 1);
  }
  const std::string a = slurp(dir + "/a");
  EXPECT_EQ(a, slurp(dir + "/b"));
  // Every kept line is a line of the corpus (or a piece of the long one), in corpus order: a subsequence.
  std::vector<std::string> input;
  std::istringstream all(text);
  for (std::string line; std::getline(all, line);) input.push_back(line);
  std::istringstream in(a);
  size_t next = 0, kept = 0;
  for (std::string line; std::getline(in, line); ++kept) {
    if (line.rfind("\xe2\x82\xac", 0) == 0) {
      EXPECT_LE(line.size(), kMaxSampleLine);
      EXPECT_EQ(line.size() % 3, 0u);
      continue;
    }
    while (next < input.size() && input[next] != line) ++next;
    ASSERT_LT(next, input.size()) << "not a corpus line, or out of order: " << line;
    ++next;
  }
  EXPECT_GT(kept, 1000u);
}

std::vector<uint32_t> ids_of(const TokenStream& stream) {
  std::vector<int64_t> wide(stream.size());
  stream.copy_to(0, wide.size(), wide.data());
  return std::vector<uint32_t>(wide.begin(), wide.end());
}

TEST(TokenStream, WindowsSpanShardsInUint16AndUint32) {
  const std::string dir = test_dir("token-stream");
  for (uint32_t vocab : {4096u, 70000u}) {
    std::vector<uint32_t> ids;
    for (uint32_t i = 0; i < 5000; ++i) ids.push_back((i * 2654435761u) % vocab);
    const std::string prefix = "v" + std::to_string(vocab);
    ShardedWriter writer(dir, prefix, vocab, 1024);
    for (size_t at = 0; at < ids.size(); at += 333)
      writer.append(std::vector<uint32_t>(ids.begin() + at, ids.begin() + std::min(ids.size(), at + 333)));
    const auto names = writer.finish();
    ASSERT_EQ(names.size(), 5u);  // 4 × 1024 + 904
    EXPECT_EQ(names[4], prefix + "-000004.bin");
    const uint64_t bytes_per_token = vocab <= 65536 ? 2 : 4;
    EXPECT_EQ(fs::file_size(dir + "/" + names[0]), 32 + 1024 * bytes_per_token);
    std::vector<std::string> paths;
    for (const auto& n : names) paths.push_back(dir + "/" + n);
    const TokenStream stream = TokenStream::open(paths);
    EXPECT_EQ(stream.size(), ids.size());
    EXPECT_EQ(stream.shard_count(), 5u);
    EXPECT_EQ(ids_of(stream), ids);
    for (size_t start = 1000; start < 1100; ++start) {  // windows across the first boundary
      std::vector<int64_t> window(50);
      stream.copy_to(start, 50, window.data());
      for (size_t i = 0; i < 50; ++i) ASSERT_EQ(window[i], ids[start + i]);
    }
    std::vector<int64_t> past(10);
    EXPECT_THROW(stream.copy_to(4995, 10, past.data()), RuntimeFailure);
  }
  ShardedWriter empty(dir, "empty", 4096, 1024);
  const auto names = empty.finish();
  ASSERT_EQ(names.size(), 1u);
  EXPECT_EQ(TokenStream::open({dir + "/" + names[0]}).size(), 0u);
  // Shards of one split must share a vocabulary.
  write_shard(dir + "/other.bin", {1, 2, 3}, 512);
  EXPECT_THROW(TokenStream::open({dir + "/v4096-000000.bin", dir + "/other.bin"}), RuntimeFailure);
}

TEST(TokenStream, BatchesDoNotDependOnTheShardSize) {
  const std::string dir = test_dir("token-stream-batches");
  std::vector<uint32_t> ids;
  for (uint32_t i = 0; i < 20000; ++i) ids.push_back((i * 7919u + i / 13) % 4096);
  write_shard(dir + "/one.bin", ids, 4096);
  ShardedWriter writer(dir, "many", 4096, 1024);
  writer.append(ids);
  std::vector<std::string> many;
  for (const auto& n : writer.finish()) many.push_back(dir + "/" + n);
  const TokenStream a = TokenStream::open({dir + "/one.bin"}), b = TokenStream::open(many);
  const BatchLoader la(a, 64, 8, 5), lb(b, 64, 8, 5);
  for (int step = 0; step < 20; ++step) {
    const auto [xa, ya, pa] = la.train_batch(step, step % 3);
    const auto [xb, yb, pb] = lb.train_batch(step, step % 3);
    EXPECT_TRUE(torch::equal(xa, xb) && torch::equal(ya, yb)) << "step " << step;
  }
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(torch::equal(la.eval_batch(i, 4).inputs, lb.eval_batch(i, 4).inputs));
}

// The trainer's prefetching: what it asks for is what the loader gives, whether it was prefetched (the usual
// order), asked out of order (a stale prefetch is dropped) or asked with nothing prefetched.
TEST(TokenStream, PrefetchedBatchesAreTheLoadersBatches) {
  const std::string dir = test_dir("token-stream-prefetch");
  std::vector<uint32_t> ids;
  for (uint32_t i = 0; i < 5000; ++i) ids.push_back((i * 7919u + i / 13) % 512);
  write_shard(dir + "/one.bin", ids, 512);
  const TokenStream stream = TokenStream::open({dir + "/one.bin"});
  const BatchLoader loader(stream, 32, 4, 9);
  PrefetchingLoader prefetching(loader, torch::kCPU);
  auto expect_batch = [&](int64_t step, int64_t micro) {
    const auto [x, y, p] = prefetching.train_batch(step, micro);
    const auto [ex, ey, ep] = loader.train_batch(step, micro);
    EXPECT_TRUE(torch::equal(x, ex) && torch::equal(y, ey)) << "step " << step << " micro " << micro;
  };
  expect_batch(0, 0);  // nothing prefetched yet
  for (int64_t step = 0; step < 6; ++step)
    for (int64_t micro = 0; micro < 2; ++micro) {
      prefetching.prefetch(micro == 1 ? step + 1 : step, micro == 1 ? 0 : 1);
      expect_batch(micro == 1 ? step + 1 : step, micro == 1 ? 0 : 1);
    }
  EXPECT_EQ(prefetching.prefetched(), 12);
  prefetching.prefetch(7, 0);
  expect_batch(3, 1);  // not what was prefetched
  EXPECT_EQ(prefetching.prefetched(), 12);
  prefetching.prefetch(8, 1);  // left pending: the destructor waits for it
}

// ---- a generated multi-format corpus, prepared, against the in-memory encoding of the same text ----

std::string gunzip(const std::string& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  std::string out;
  char buffer[1 << 16];
  for (int n; (n = gzread(file, buffer, sizeof buffer)) > 0;) out.append(buffer, static_cast<size_t>(n));
  gzclose(file);
  return out;
}

// A file's documents as docs/data.md defines them: a plain file is one, each JSON Lines record is one.
std::vector<std::string> documents_of(const std::string& path) {
  const bool gz = path.size() > 3 && path.substr(path.size() - 3) == ".gz";
  const std::string content = gz ? gunzip(path) : slurp(path);
  std::vector<std::string> docs;
  if (path.find(".jsonl") == std::string::npos) {
    docs.push_back(content.empty() || content.back() == '\n' ? content : content + "\n");
    return docs;
  }
  std::istringstream in(content);
  for (std::string line; std::getline(in, line);) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::string text = nlohmann::json::parse(line).at("text").get<std::string>();
    if (!text.empty() && text.back() != '\n') text += '\n';
    docs.push_back(text);
  }
  return docs;
}

struct ReferenceSplit {
  std::vector<uint32_t> train, val;
};

ReferenceSplit encode_in_memory(const std::string& corpus_dir, const Tokenizer& tok, double val_fraction) {
  std::vector<std::string> files;
  uint64_t bytes = 0;
  for (const auto& e : fs::recursive_directory_iterator(corpus_dir)) {
    if (e.is_regular_file()) {
      files.push_back(e.path().string());
      bytes += e.file_size();
    }
  }
  std::sort(files.begin(), files.end());
  const size_t period = std::max<size_t>(2, static_cast<size_t>(std::lround(1.0 / val_fraction)));
  const size_t piece_bytes = std::clamp<size_t>(bytes / (4 * period), 1, 32 * 1024);
  std::vector<std::vector<uint32_t>> pieces;
  const uint32_t eos = static_cast<uint32_t>(tok.special_tokens().eos.id);
  for (const auto& f : files)
    for (const auto& doc : documents_of(f)) {
      for (const auto& piece : cut_document(doc, piece_bytes)) pieces.push_back(tok.encode(piece));
      if (!doc.empty()) pieces.back().push_back(eos);  // format 4: the document's last token, in its last piece
    }
  ReferenceSplit split;
  for (size_t i = 0; i < pieces.size(); ++i) {
    auto& dst = i % period == period - 1 ? split.val : split.train;
    dst.insert(dst.end(), pieces[i].begin(), pieces[i].end());
  }
  return split;
}

std::string generate_corpus(const std::string& dir, int mb) {
  const std::string out = dir + "/corpus";
  const std::string command = std::string("bash '") + SSMAX_SOURCE_DIR + "/scripts/generate_corpus.sh' '" + out + "' " +
                              std::to_string(mb) + " 3 2>/dev/null";
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
  return out;
}

DataConfig data_config(const std::string& corpus, const std::string& cache, int vocab, int sample_mb) {
  DataConfig data;
  data.sources = {corpus};
  data.dataset_dir = cache;
  data.tokenizer.vocab_size = vocab;
  data.tokenizer.sample_mb = sample_mb;
  return data;
}

TEST(PrepareStream, ThreadsAndShardSizeDoNotChangeTheTokens) {
  const std::string dir = test_dir("stream-threads");
  const std::string corpus = generate_corpus(dir, 3);
  // A 1 MB sample, well under the corpus: the sample is what bounds tokenizer memory.
  const DataConfig one = data_config(corpus, dir + "/cache-a", 512, 1);
  DataConfig many = one;
  many.dataset_dir = dir + "/cache-b";
  many.shard_tokens = 4096;
  // An interrupted build (its process is gone) is cleared away, not trusted.
  const pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);
  const std::string stale = many.dataset_dir + "/.tmp-0123456789abcdef-" + std::to_string(child);
  fs::create_directories(stale);
  const PreparedDataset a = prepare_dataset(one, 1), b = prepare_dataset(many, 3);
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_EQ(a.train_shards.size(), 1u);
  EXPECT_GT(b.train_shards.size(), 10u);
  EXPECT_EQ(slurp(a.tokenizer_model), slurp(b.tokenizer_model));
  EXPECT_EQ(ids_of(TokenStream::open(a.train_shards)), ids_of(TokenStream::open(b.train_shards)));
  EXPECT_EQ(ids_of(TokenStream::open(a.val_shards)), ids_of(TokenStream::open(b.val_shards)));
  EXPECT_DOUBLE_EQ(a.unigram_entropy_nats, b.unigram_entropy_nats);
  const auto meta = nlohmann::json::parse(slurp(a.dir + "/meta.json"));
  EXPECT_EQ(meta.at("format"), 4);
  EXPECT_EQ(meta.at("token_bytes"), 2);
  EXPECT_FALSE(fs::exists(a.dir + "/tokenizer-sample.txt"));
}

TEST(PrepareStream, OlderDatasetsAreReadAndNewerOnesRefused) {
  const std::string dir = test_dir("stream-formats");
  std::ofstream(dir + "/src.txt") << lines_text(3000, 9);
  // 271: bytes, specials and the text's 12 characters, all this text allows.
  const DataConfig data = data_config(dir + "/src.txt", dir + "/cache", 271, 100);
  const PreparedDataset built = prepare_dataset(data);
  // The layout formats 1 and 2 wrote: one train.bin, one val.bin, named by "train_shard" / "val_shard".
  const std::string old = dir + "/old";
  fs::create_directories(old);
  fs::copy_file(built.tokenizer_model, old + "/tokenizer.model");
  fs::copy_file(built.train_shards.at(0), old + "/train.bin");
  fs::copy_file(built.val_shards.at(0), old + "/val.bin");
  auto meta = nlohmann::json::parse(slurp(built.dir + "/meta.json"));
  meta["format"] = 2;
  meta["files"] = {{"tokenizer_model", "tokenizer.model"},
                   {"train_shard", "train.bin"},
                   {"val_shard", "val.bin"},
                   {"corpus", "corpus.txt"}};
  std::ofstream(old + "/meta.json") << meta.dump();
  const PreparedDataset legacy = load_prepared_dataset(old);
  EXPECT_EQ(legacy.train_shards, std::vector<std::string>{old + "/train.bin"});
  EXPECT_EQ(legacy.train_tokens, built.train_tokens);
  // A one-shard split is fingerprinted under its old name: the same bytes in the old layout hash the same (format 4
  // adds its document indexes to the fingerprint; the old layout has none).
  EXPECT_EQ(dataset_fingerprint(old, "tokenizer.model", {"train.bin"}, {"val.bin"}),
            dataset_fingerprint(built.dir, "tokenizer.model", {"train-000000.bin"}, {"val-000000.bin"}));
  EXPECT_EQ(legacy.train_documents, "");
  EXPECT_EQ(legacy.document_end_token, -1);
  meta["format"] = 99;
  std::ofstream(old + "/meta.json") << meta.dump();
  try {
    load_prepared_dataset(old);
    ADD_FAILURE() << "a newer format was read";
  } catch (const RuntimeFailure& e) {
    EXPECT_NE(std::string(e.what()).find("dataset format 99 comes from a newer ssmax-gpt"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("ssmax-gpt prepare CONFIG"), std::string::npos);
  }
}

TEST(PrepareStream, TokenStreamEqualsTheInMemoryEncodingOfA50MBCorpus) {
  const std::string dir = test_dir("stream-50mb");
  const std::string corpus = generate_corpus(dir, 50);
  DataConfig data = data_config(corpus, dir + "/cache", 2048, 8);
  data.shard_tokens = 1'000'000;
  const PreparedDataset ds = prepare_dataset(data, 2);
  EXPECT_GT(ds.train_shards.size(), 5u);
  const Tokenizer tok = Tokenizer::load(ds.tokenizer_model);
  const ReferenceSplit expected = encode_in_memory(corpus, tok, data.val_fraction);
  const std::vector<uint32_t> train = ids_of(TokenStream::open(ds.train_shards));
  const std::vector<uint32_t> val = ids_of(TokenStream::open(ds.val_shards));
  ASSERT_EQ(train.size(), expected.train.size());
  ASSERT_EQ(val.size(), expected.val.size());
  EXPECT_TRUE(train == expected.train);
  EXPECT_TRUE(val == expected.val);
  EXPECT_GT(val.size() * 30, train.size());  // ~5 % held out
}

}  // namespace
}  // namespace ssmax
