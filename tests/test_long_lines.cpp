// Lines too long to encode at once (a JSON Lines record of many MB without a newline, a one-line text file): cut
// into pieces of bounded size before a space, so that their tokens are the whole line's; the tokenizer's sample takes
// a bounded part of such a line. The memory this bounds is measured from outside by tests/cli/long_lines.sh.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/corpus_split.h"
#include "data/prepare.h"
#include "data/token_stream.h"
#include "data/tokenizer.h"
#include "data/tokenizer_sample.h"
#include "test_util.h"

namespace ssmax {
namespace {

// Made-up words of one to three syllables (UTF-8 among them), a number now and then, separated by single and
// double spaces; no newline.
std::string long_line(size_t bytes, unsigned seed) {
  static const char* syllables[] = {"ka", "re", "mi", "no", "su", "ta", "le", "vo", "ri",
                                    "an", "el", "os", "ur", "in", "dé", "fa", "gu", "λό"};
  std::mt19937 rng(seed);
  std::string line;
  while (line.size() < bytes) {
    if (!line.empty()) line += rng() % 20 == 0 ? "  " : " ";
    if (rng() % 15 == 0) line += std::to_string(rng() % 1000) + ",";
    for (unsigned n = 1 + rng() % 3; n > 0; --n) line += syllables[rng() % 18];
  }
  return line;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

struct Cut {
  std::vector<std::string> pieces;
  std::vector<bool> ends;
};

// The documents through a PieceCutter, each in blocks of random size, or in one call when `whole`.
Cut stream(const std::vector<std::string>& docs, size_t piece_bytes, size_t limit, bool whole) {
  Cut got;
  PieceCutter cutter(
      piece_bytes,
      [&](std::string_view p, bool end) {
        got.pieces.emplace_back(p);
        got.ends.push_back(end);
      },
      limit);
  std::mt19937 rng(static_cast<unsigned>(piece_bytes + limit));
  for (const auto& doc : docs) {
    for (size_t at = 0; at < doc.size();) {
      const size_t n = whole ? doc.size() : std::min<size_t>(doc.size() - at, 1 + rng() % 9000);
      cutter.add(std::string_view(doc).substr(at, n), false);
      at += n;
    }
    cutter.add({}, true);
  }
  return got;
}

TEST(LongLines, StreamedCutsEqualTheRuleAndStayUnderTheLimit) {
  std::string euros;  // no space at all: cut at the start of a character
  while (euros.size() < 300000) euros += euros.size() % 7 ? "\xe2\x82\xac" : "ab";
  const std::vector<std::string> docs = {"a short line\n" + long_line(50000, 1) + "\nand one more\n", euros + "\n",
                                         long_line(300000, 2), "x" + std::string(20000, 'b') + " c\n"};
  for (auto [piece_bytes, limit] :
       {std::pair<size_t, size_t>{1, 64}, {100, 1000}, {1000, 4096}, {4096, 8192}, {kMaxPieceBytes, kPieceLimit}}) {
    Cut expected;
    std::string all;
    for (const auto& doc : docs) {
      const auto pieces = cut_document(doc, piece_bytes, limit);
      for (size_t i = 0; i < pieces.size(); ++i) {
        expected.pieces.push_back(pieces[i]);
        expected.ends.push_back(i + 1 == pieces.size());
      }
      all += doc;
    }
    size_t cut_in_a_line = 0;
    for (const auto& p : expected.pieces) {
      EXPECT_LE(p.size(), limit) << "piece_bytes " << piece_bytes;
      EXPECT_NE((static_cast<unsigned char>(p[0]) & 0xC0), 0x80u) << "a piece begins inside a character";
      cut_in_a_line += p.back() != '\n';
    }
    EXPECT_GT(cut_in_a_line, 3u) << "piece_bytes " << piece_bytes;  // the long lines were cut
    for (bool whole : {false, true}) {
      const Cut got = stream(docs, piece_bytes, limit, whole);
      EXPECT_EQ(got.pieces, expected.pieces) << "piece_bytes " << piece_bytes << (whole ? ", whole" : ", blocks");
      EXPECT_EQ(got.ends, expected.ends) << "piece_bytes " << piece_bytes;
    }
    std::string joined;
    for (const auto& p : expected.pieces) joined += p;
    EXPECT_EQ(joined, all);
  }
  // A line under the limit stays one piece, as before the limit existed.
  EXPECT_EQ(cut_document(long_line(100000, 3) + "\n", kMaxPieceBytes).size(), 1u);
}

TEST(LongLines, ACutBeforeASpaceLeavesTheTokensOfTheWholeLine) {
  const std::string dir = test_dir("long-lines-tokens");
  {
    std::ofstream corpus(dir + "/corpus.txt", std::ios::binary);
    for (unsigned i = 0; i < 3000; ++i) corpus << long_line(60, i) << "\n";
  }
  const std::string line = long_line(300000, 7) + "\n";
  const Cut cut = stream({line}, 4096, 16384, true);
  ASSERT_GT(cut.pieces.size(), 20u);
  for (size_t i = 1; i < cut.pieces.size(); ++i) ASSERT_EQ(cut.pieces[i][0], ' ') << "piece " << i;
  for (const char* type : {"bpe", "unigram"}) {
    train_tokenizer({dir + "/corpus.txt", dir + "/" + type, 500, type});
    const Tokenizer tok = Tokenizer::load(dir + "/" + type + ".model");
    const std::vector<uint32_t> whole = tok.encode(line);
    std::vector<uint32_t> pieces, after_space;
    for (const auto& p : cut.pieces) {
      const auto ids = tok.encode(p);
      pieces.insert(pieces.end(), ids.begin(), ids.end());
    }
    EXPECT_TRUE(pieces == whole) << type << ": " << pieces.size() << " tokens in pieces, " << whole.size() << " whole";
    // Cut after the spaces instead: the tokens change, which is why the cut goes before one.
    for (size_t i = 0; i < cut.pieces.size(); ++i) {
      const std::string p = cut.pieces[i].substr(i ? 1 : 0) + (i + 1 < cut.pieces.size() ? " " : "");
      const auto ids = tok.encode(p);
      after_space.insert(after_space.end(), ids.begin(), ids.end());
    }
    EXPECT_FALSE(after_space == whole) << type;
  }
}

TEST(LongLines, TheTokenizerSampleTakesATenthOfItsBudgetFromAHugeLine) {
  const std::string dir = test_dir("long-lines-sample");
  const std::string line = long_line(1'000'000, 4);
  const std::string text = "first line\n" + line + "\nlast line\n";
  for (size_t block : {text.size(), size_t{1000}}) {
    LineSample sample(2'000'000);
    EXPECT_EQ(sample.max_line_pieces(), 12u);  // 200 kB of the line
    for (size_t at = 0; at < text.size(); at += block) sample.add(std::string_view(text).substr(at, block));
    sample.finish();
    sample.write(dir + "/sample.txt");
    EXPECT_EQ(sample.lines_seen(), 2 + 12u) << "block " << block;
    EXPECT_FALSE(sample.whole());
    std::istringstream kept(slurp(dir + "/sample.txt"));
    std::vector<std::string> lines;
    for (std::string l; std::getline(kept, l);) lines.push_back(l);
    ASSERT_EQ(lines.size(), 2 + 12u);
    EXPECT_EQ(lines.front(), "first line");
    EXPECT_EQ(lines.back(), "last line");
    std::string start;
    for (size_t i = 1; i <= 12; ++i) {
      EXPECT_LE(lines[i].size(), kMaxSampleLine);
      EXPECT_GE(lines[i].size(), kMaxSampleLine - 3);
      start += lines[i];
    }
    EXPECT_EQ(start, line.substr(0, start.size())) << "block " << block;
    EXPECT_EQ(sample.bytes_left_out(), line.size() - start.size());
  }
}

// Every document ends in one end token, and the dataset holds exactly the tokens of each whole document.
void expect_whole_documents(const PreparedDataset& ds, const std::vector<std::string>& docs) {
  const Tokenizer tok = Tokenizer::load(ds.tokenizer_model);
  uint64_t expected = 0;
  for (const auto& doc : docs) expected += tok.encode(doc).size() + 1;
  EXPECT_EQ(ds.train_tokens + ds.val_tokens, expected);
  const uint32_t eos = static_cast<uint32_t>(ds.document_end_token);
  uint64_t ends = 0;
  for (const auto* shards : {&ds.train_shards, &ds.val_shards}) {
    const TokenStream stream = TokenStream::open(*shards);
    std::vector<int64_t> ids(stream.size());
    stream.copy_to(0, ids.size(), ids.data());
    ends += std::count(ids.begin(), ids.end(), int64_t{eos});
  }
  EXPECT_EQ(ends, docs.size());
  EXPECT_GT(ds.val_tokens, 0u);
}

TEST(LongLines, AHugeRecordOrOneLineFileIsPreparedAsItsWholeTokens) {
  const std::string dir = test_dir("long-lines-prepare");
  std::vector<std::string> records;
  {
    std::ofstream out(dir + "/corpus.jsonl", std::ios::binary);
    for (unsigned i = 0; i < 81; ++i) {
      records.push_back(long_line(i == 40 ? 1'500'000 : 300, i));
      out << nlohmann::json{{"text", records.back()}}.dump() << "\n";
      records.back() += "\n";
    }
  }
  DataConfig data;
  data.sources = {dir + "/corpus.jsonl"};
  data.dataset_dir = dir + "/cache";
  data.tokenizer.vocab_size = 500;
  expect_whole_documents(prepare_dataset(data, 2), records);
  // One line of 1 MB in a plain file: cut into pieces like the record, so train and val both get text.
  const std::string line = long_line(1'000'000, 5);
  std::ofstream(dir + "/one-line.txt", std::ios::binary) << line;
  data.sources = {dir + "/one-line.txt"};
  expect_whole_documents(prepare_dataset(data, 2), {line + "\n"});
}

}  // namespace
}  // namespace ssmax
