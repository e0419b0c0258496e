// Documents in the data (dataset format 4): blank-line documents in plain text, the end-of-document token and the
// per-split boundary index that prepare writes (against expectations built from the generated documents and a
// brute-force scan of the streams), the index's positions and the loader's against per-token brute force, and the
// damaged or missing indexes the readers refuse.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/dataset_cache.h"
#include "data/document_index.h"
#include "data/loader.h"
#include "data/prepare.h"
#include "data/sources.h"
#include "data/token_source.h"
#include "data/token_stream.h"
#include "data/tokenizer.h"
#include "test_util.h"
#include "util/errors.h"
#include "util/hash.h"

namespace ssmax {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

void write(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

// The documents stream_source_text gives for `path`: text between document ends, empty ones left out.
std::vector<std::string> streamed_documents(const std::string& path, bool blank_line) {
  std::vector<std::string> docs(1);
  Hasher64 raw;
  uint64_t raw_bytes = 0;
  stream_source_text(
      path, "text",
      [&](std::string_view t, bool end) {
        docs.back().append(t);
        if (end && !docs.back().empty()) docs.emplace_back();
      },
      raw, raw_bytes, blank_line);
  docs.pop_back();
  return docs;
}

// docs/data.md's rule, the plain way: whole text in memory, one line at a time.
std::vector<std::string> blank_line_documents(const std::string& text) {
  std::vector<std::string> docs;
  std::string doc;
  for (size_t start = 0; start < text.size();) {
    const size_t nl = text.find('\n', start);
    const size_t end = nl == std::string::npos ? text.size() : nl + 1;
    const std::string line = text.substr(start, end - start);
    if (line.find_first_not_of(" \t\r\n") == std::string::npos) {
      if (!doc.empty()) docs.push_back(doc);
      doc.clear();
    } else {
      doc += line;
    }
    start = end;
  }
  if (!doc.empty()) docs.push_back(doc.back() == '\n' ? doc : doc + "\n");
  return docs;
}

// Random lines of the 12 characters "0123456789x ", so a 271-piece tokenizer fits any of these corpora.
std::string random_line(std::mt19937& rng) {
  std::string line;
  const int words = 1 + static_cast<int>(rng() % 12);
  for (int w = 0; w < words; ++w) line += (w ? " " : "") + std::to_string(rng() % 1000) + "x";
  return line + "\n";
}

std::string random_blank(std::mt19937& rng) {
  static const char* blanks[] = {"\n", " \n", "\t\n", "\r\n", " \t \r\n"};
  return blanks[rng() % 5];
}

TEST(BlankLineDocuments, SplitsOnBlankLinesAndDropsThem) {
  const std::string dir = test_dir("doc-blank-lines");
  write(dir + "/a.txt", "\n \none\ntwo\n\nthree\n \t\r\n\n\nfour");
  EXPECT_EQ(streamed_documents(dir + "/a.txt", true), (std::vector<std::string>{"one\ntwo\n", "three\n", "four\n"}));
  // The default: one document per file, blank lines and all.
  EXPECT_EQ(streamed_documents(dir + "/a.txt", false),
            std::vector<std::string>{"\n \none\ntwo\n\nthree\n \t\r\n\n\nfour\n"});
  write(dir + "/crlf.txt", "a\r\nb\r\n\r\nc\r\n");
  EXPECT_EQ(streamed_documents(dir + "/crlf.txt", true), (std::vector<std::string>{"a\r\nb\r\n", "c\r\n"}));
  write(dir + "/tail.txt", "x\n\ny");  // no final newline: one is added, as for a whole file
  EXPECT_EQ(streamed_documents(dir + "/tail.txt", true), (std::vector<std::string>{"x\n", "y\n"}));
  write(dir + "/blank-tail.txt", "x\n  \t");  // a blank last line without its newline ends nothing
  EXPECT_EQ(streamed_documents(dir + "/blank-tail.txt", true), std::vector<std::string>{"x\n"});
  write(dir + "/spaces.txt", "  lead\n\t tab\n");  // leading white space of a text line is text
  EXPECT_EQ(streamed_documents(dir + "/spaces.txt", true), std::vector<std::string>{"  lead\n\t tab\n"});
  // JSON Lines records stay the documents: blank lines inside a record's text split nothing.
  write(dir + "/r.jsonl", "{\"text\": \"p\\n\\nq\"}\n{\"text\": \"r\"}\n");
  EXPECT_EQ(streamed_documents(dir + "/r.jsonl", true), (std::vector<std::string>{"p\n\nq\n", "r\n"}));
}

TEST(BlankLineDocuments, BlankLinesAcrossReadBlocksSplitLikeTheWholeText) {
  const std::string dir = test_dir("doc-blank-blocks");
  constexpr size_t kBlock = 1 << 20;  // sources.cpp's read block
  std::mt19937 rng(7);
  // Around each of the first read-block boundaries: a blank line cut by it, a text line whose leading spaces it
  // cuts, and a CRLF blank line cut between '\r' and '\n'.
  std::string text;
  const auto fill_to = [&](size_t at) {
    while (text.size() + 80 < at) text += random_line(rng);
    text += std::string(at - text.size() - 1, '7') + "\n";
  };
  fill_to(kBlock - 2);
  text += "  \t \n";  // the blank line straddles the first boundary
  fill_to(2 * kBlock - 3);
  text += "     spaced line\n";
  fill_to(3 * kBlock - 1);
  text += "\r\n";
  while (text.size() < 3 * kBlock + 300000) text += rng() % 6 ? random_line(rng) : random_blank(rng);
  write(dir + "/big.txt", text);
  const auto docs = streamed_documents(dir + "/big.txt", true);
  EXPECT_EQ(docs, blank_line_documents(text));
  EXPECT_GT(docs.size(), 1000u);
  EXPECT_EQ(streamed_documents(dir + "/big.txt", false).size(), 1u);
}

// ---- the index itself ----

// Random starts over a stream of `tokens` (0 first; documents of 1 to `longest` tokens).
std::vector<uint64_t> random_starts(std::mt19937& rng, uint64_t tokens, uint64_t longest) {
  std::vector<uint64_t> starts;
  for (uint64_t at = 0; at < tokens; at += 1 + rng() % longest) starts.push_back(at);
  return starts;
}

// What DocumentIndex::positions promises, token by token.
int64_t expected_position(const std::vector<uint64_t>& starts, uint64_t range_start, uint64_t token) {
  uint64_t doc = 0;
  for (uint64_t s : starts)
    if (s <= token) doc = s;
  return static_cast<int64_t>(token - std::max(range_start, doc));
}

TEST(DocumentIndex, PositionsEqualAPerTokenScan) {
  const std::string dir = test_dir("doc-index-positions");
  std::mt19937 rng(3);
  for (uint64_t longest : {1u, 5u, 60u, 700u}) {
    const uint64_t tokens = 3000 + rng() % 500;
    const std::vector<uint64_t> starts = random_starts(rng, tokens, longest);
    const std::string path = dir + "/i" + std::to_string(longest) + ".bin";
    DocumentIndex::write(path, starts, tokens);
    const DocumentIndex index = DocumentIndex::open(path, tokens);
    ASSERT_EQ(index.documents(), starts.size());
    EXPECT_EQ(fs::file_size(path), 32 + 8 * starts.size());
    for (int trial = 0; trial < 300; ++trial) {
      uint64_t start = rng() % tokens;
      if (trial % 10 == 0) start = starts[rng() % starts.size()];  // at a document's start
      uint64_t n = rng() % (tokens - start + 1);
      if (trial % 7 == 0) n = tokens - start;  // to the stream's end
      if (trial == 0) start = 0, n = tokens;
      std::vector<int64_t> got(n);
      index.positions(start, n, got.data());
      for (uint64_t i = 0; i < n; ++i)
        ASSERT_EQ(got[i], expected_position(starts, start, start + i)) << "range " << start << "+" << n << " at " << i;
    }
    std::vector<int64_t> past(2);
    EXPECT_THROW(index.positions(tokens - 1, 2, past.data()), RuntimeFailure);
  }
  DocumentIndex::write(dir + "/empty.bin", {}, 0);  // an empty split
  EXPECT_EQ(DocumentIndex::open(dir + "/empty.bin", 0).documents(), 0u);
}

// The message of opening `path` as the index of `tokens` tokens; the file must be named and the fix given.
std::string refusal(const std::string& path, uint64_t tokens) {
  const std::string message = error_of([&] { DocumentIndex::open(path, tokens); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("ssmax-gpt prepare"), std::string::npos) << message;
  return message;
}

TEST(DocumentIndex, DamagedFilesAreRefusedNamingThem) {
  const std::string dir = test_dir("doc-index-damaged");
  const std::string good = dir + "/good.bin";
  DocumentIndex::write(good, {0, 5, 9, 20}, 30);
  const std::string bytes = read_file(good);
  const auto damaged = [&](const std::string& name, std::string b) {
    write(dir + "/" + name, b);
    return dir + "/" + name;
  };
  const auto put = [](std::string b, size_t at, uint64_t v) {
    for (int i = 0; i < 8; ++i) b[at + i] = static_cast<char>(v >> (8 * i));
    return b;
  };
  EXPECT_NE(refusal(damaged("truncated.bin", bytes.substr(0, bytes.size() - 3)), 30).find("truncated"),
            std::string::npos);
  EXPECT_NE(refusal(damaged("longer.bin", bytes + "\x01"), 30).find("size mismatch"), std::string::npos);
  EXPECT_NE(refusal(damaged("short.bin", bytes.substr(0, bytes.size() - 8)), 30).find("truncated"), std::string::npos);
  EXPECT_NE(refusal(damaged("header.bin", bytes.substr(0, 20)), 30).find("truncated"), std::string::npos);
  EXPECT_NE(refusal(damaged("magic.bin", "X" + bytes.substr(1)), 30).find("bad magic"), std::string::npos);
  EXPECT_NE(refusal(damaged("count.bin", put(bytes, 16, 5)), 30).find("header says 5 documents"), std::string::npos);
  EXPECT_NE(refusal(damaged("fewer.bin", put(bytes, 16, 3)), 30).find("size mismatch: header says 3 documents"),
            std::string::npos);
  EXPECT_NE(refusal(damaged("unsorted.bin", put(bytes, 32 + 16, 4)), 30).find("not after 5"), std::string::npos);
  EXPECT_NE(refusal(damaged("first.bin", put(bytes, 32, 1)), 30).find("first document starts at 1"), std::string::npos);
  EXPECT_NE(refusal(damaged("last.bin", put(bytes, 32 + 24, 30)), 30).find("past the stream"), std::string::npos);
  EXPECT_NE(refusal(good, 31).find("split holds 31"), std::string::npos);  // another stream
  EXPECT_NE(refusal(dir + "/missing.bin", 30).find("cannot open"), std::string::npos);
  EXPECT_NO_THROW(DocumentIndex::open(good, 30));
}

// ---- the loader ----

TEST(DocumentIndex, LoaderPositionsEqualAPerTokenScanAndWindowsDoNotMove) {
  const std::string dir = test_dir("doc-index-loader");
  constexpr uint64_t kTokens = 20000;
  std::vector<uint32_t> ids(kTokens);
  for (uint32_t i = 0; i < kTokens; ++i) ids[i] = i;  // an id is its position: a window's first id is its start
  write_shard(dir + "/s.bin", ids, 65536);
  std::mt19937 rng(11);
  const std::vector<uint64_t> starts = random_starts(rng, kTokens, 90);
  DocumentIndex::write(dir + "/d.bin", starts, kTokens);
  const TokenStream stream = TokenStream::open({dir + "/s.bin"});
  const DocumentIndex index = DocumentIndex::open(dir + "/d.bin", kTokens);
  const int64_t T = 64, B = 8;
  const BatchLoader plain(stream, T, B, 5), documented(stream, T, B, 5, &index);
  PrefetchingLoader prefetching(documented, torch::kCPU);
  const auto check = [&](const Batch& batch, const Batch& without, const std::string& what) {
    ASSERT_TRUE(torch::equal(batch.inputs, without.inputs)) << what;  // the same windows
    ASSERT_TRUE(torch::equal(batch.targets, without.targets)) << what;
    EXPECT_FALSE(without.positions.defined());
    // No positions: every row is one document from its first token (the plain causal case, data/loader.h).
    if (batch.positions.defined()) ASSERT_EQ(batch.positions.sizes(), batch.inputs.sizes());
    for (int64_t b = 0; b < B; ++b) {
      const auto start = static_cast<uint64_t>(batch.inputs[b][0].item<int64_t>());
      for (int64_t t = 0; t < T; ++t)
        ASSERT_EQ(batch.positions.defined() ? batch.positions[b][t].item<int64_t>() : t,
                  expected_position(starts, start, start + t))
            << what << " row " << b << " token " << t;
    }
  };
  for (int64_t step = 0; step < 12; ++step) {
    check(documented.train_batch(step, step % 2), plain.train_batch(step, step % 2), "train " + std::to_string(step));
    prefetching.prefetch(step, 1);
    check(prefetching.train_batch(step, 1), plain.train_batch(step, 1), "prefetched " + std::to_string(step));
  }
  for (int64_t i = 0; i < 5; ++i) check(documented.eval_batch(i, 5), plain.eval_batch(i, 5), "eval");  // to the end
  // An index whose one document is the whole stream: every window is plain, and the batches carry no positions.
  DocumentIndex::write(dir + "/one.bin", {0}, kTokens);
  const DocumentIndex one = DocumentIndex::open(dir + "/one.bin", kTokens);
  for (int64_t step = 0; step < 3; ++step)
    EXPECT_FALSE(BatchLoader(stream, T, B, 5, &one).train_batch(step, 0).positions.defined()) << step;
  // An index of another stream is refused, naming it.
  DocumentIndex::write(dir + "/other.bin", {0, 7}, kTokens - 1);
  const DocumentIndex other = DocumentIndex::open(dir + "/other.bin", kTokens - 1);
  EXPECT_NE(error_of([&] { BatchLoader(stream, T, B, 5, &other); }).find(dir + "/other.bin"), std::string::npos);
  // TokenSource: positions from the index; ids of a text file have none.
  const TokenSource source = TokenSource::from_shards({dir + "/s.bin"}, dir + "/d.bin");
  ASSERT_TRUE(source.has_documents());
  std::vector<int64_t> got(500);
  source.positions(kTokens - 500, 500, got.data());
  for (uint64_t i = 0; i < 500; ++i) ASSERT_EQ(got[i], expected_position(starts, kTokens - 500, kTokens - 500 + i));
  EXPECT_FALSE(TokenSource::from_shards({dir + "/s.bin"}).has_documents());
  const TokenSource text = TokenSource::from_ids({1, 2, 3}, "prompt.txt");
  EXPECT_FALSE(text.has_documents());
  EXPECT_NE(error_of([&] { text.positions(0, 1, got.data()); }).find("prompt.txt"), std::string::npos);
}

}  // namespace
}  // namespace ssmax
