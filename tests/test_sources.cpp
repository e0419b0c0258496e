// Source formats of data.sources, streamed: plain text, JSON Lines (a text field per record) and gzip of either;
// a dataset prepared from such a mix equals one prepared from the same documents as plain files.
#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "data/prepare.h"
#include "data/sources.h"
#include "data/token_stream.h"
#include "data/tokenizer.h"
#include "test_util.h"
#include "util/errors.h"
#include "util/hash.h"

namespace ssmax {
namespace {

void write(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

void write_gzip(const std::string& path, const std::string& text) {
  gzFile file = gzopen(path.c_str(), "wb");
  ASSERT_NE(file, nullptr);
  ASSERT_EQ(gzwrite(file, text.data(), static_cast<unsigned>(text.size())), static_cast<int>(text.size()));
  ASSERT_EQ(gzclose(file), Z_OK);
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Drains stream_source_text into one string, checking the raw hash it reports against the file's own.
std::string read_text(const std::string& path, const std::string& field = "text", int* documents = nullptr) {
  std::string text;
  Hasher64 raw;
  uint64_t raw_bytes = 0;
  int ends = 0;
  stream_source_text(
      path, field,
      [&](std::string_view t, bool end) {
        text.append(t);
        ends += end;
      },
      raw, raw_bytes);
  EXPECT_EQ(raw.hex(), hash_hex(hash_file(path))) << path;
  EXPECT_EQ(raw_bytes, std::filesystem::file_size(path)) << path;
  if (documents) *documents = ends;
  return text;
}

std::string usage_error(const std::string& path, const std::string& field = "text") {
  try {
    read_text(path, field);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "(no usage error)";
}

TEST(Sources, PlainTextIsOneDocumentEndingInANewline) {
  const std::string dir = test_dir("sources-plain");
  write(dir + "/a.txt", "line one\nline two");
  int documents = 0;
  EXPECT_EQ(read_text(dir + "/a.txt", "text", &documents), "line one\nline two\n");
  EXPECT_EQ(documents, 1);
  write(dir + "/b.txt", std::string(3 << 20, 'x') + "\n");  // several read blocks, still one document
  EXPECT_EQ(read_text(dir + "/b.txt", "text", &documents).size(), (3u << 20) + 1);
  EXPECT_EQ(documents, 1);
}

TEST(Sources, JsonLinesGiveTheTextFieldOfEachRecord) {
  const std::string dir = test_dir("sources-jsonl");
  write(dir + "/a.jsonl", "{\"id\": 1, \"text\": \"first document\"}\n\n"
                          "{\"text\": \"second\\nwith two lines\\n\", \"meta\": {\"x\": 1}}\r\n"
                          "{\"text\": \"\"}\n{\"text\": \"caf\\u00e9 last\"}");
  int documents = 0;
  EXPECT_EQ(read_text(dir + "/a.jsonl", "text", &documents), "first document\nsecond\nwith two lines\ncafé last\n");
  EXPECT_EQ(documents, 4 + 1);  // one per record, and the end of the file
  write(dir + "/b.jsonl", "{\"content\": \"other field\"}\n");
  EXPECT_EQ(read_text(dir + "/b.jsonl", "content"), "other field\n");
}

TEST(Sources, GzipIsDecompressedForTextAndJsonLines) {
  const std::string dir = test_dir("sources-gzip");
  write_gzip(dir + "/a.txt.gz", "compressed text\n");
  write_gzip(dir + "/b.jsonl.gz", "{\"text\": \"compressed record\"}\n");
  EXPECT_EQ(read_text(dir + "/a.txt.gz"), "compressed text\n");
  EXPECT_EQ(read_text(dir + "/b.jsonl.gz"), "compressed record\n");
  // Concatenated gzip members (`cat a.gz b.gz`) are one valid gzip file.
  write_gzip(dir + "/c.txt.gz", "second member\n");
  write(dir + "/two.txt.gz", slurp(dir + "/a.txt.gz") + slurp(dir + "/c.txt.gz"));
  EXPECT_EQ(read_text(dir + "/two.txt.gz"), "compressed text\nsecond member\n");
  std::string big;
  for (int i = 0; i < 200000; ++i) big += "line " + std::to_string(i * 7919 % 100003) + "\n";
  write_gzip(dir + "/big.txt.gz", big);  // many read and inflate blocks
  EXPECT_EQ(read_text(dir + "/big.txt.gz"), big);
}

TEST(Sources, BadRecordsAndBrokenGzipNameTheFileAndLine) {
  const std::string dir = test_dir("sources-bad");
  write(dir + "/a.jsonl", "{\"text\": \"ok\"}\n{\"text\": 3, \"body\": \"x\"}\n");
  EXPECT_NE(usage_error(dir + "/a.jsonl")
                .find("a.jsonl:2: no string field \"text\" (data.text_field; this record "
                      "has: body, text)"),
            std::string::npos);
  write(dir + "/b.jsonl", "{\"text\": \"ok\"}\nnot json\n");
  EXPECT_NE(usage_error(dir + "/b.jsonl").find("b.jsonl:2: not a JSON object"), std::string::npos);
  write_gzip(dir + "/c.txt.gz", std::string(100000, 'x'));
  const std::string whole = slurp(dir + "/c.txt.gz");
  write(dir + "/cut.txt.gz", whole.substr(0, whole.size() / 2));
  EXPECT_THROW(read_text(dir + "/cut.txt.gz"), RuntimeFailure);
  write(dir + "/plain.txt.gz", "not gzip at all\n");
  EXPECT_THROW(read_text(dir + "/plain.txt.gz"), RuntimeFailure);
}

TEST(Sources, AMixOfFormatsPreparesAllItsDocuments) {
  const std::string dir = test_dir("sources-mix");
  std::string doc_a, doc_b, doc_c;
  for (int i = 0; i < 400; ++i) {
    doc_a += "the king went up to the city number " + std::to_string(i) + ".\n";
    doc_b += "a shepherd spake unto the river " + std::to_string(i * 7 % 13) + ".\n";
    doc_c += "the prophet looked upon the mountain " + std::to_string(i % 5) + ".\n";
  }
  std::filesystem::create_directories(dir + "/mixed");
  write(dir + "/mixed/1.txt", doc_a);
  write_gzip(dir + "/mixed/2.jsonl.gz",
             nlohmann::json{{"text", doc_b}}.dump() + "\n" + nlohmann::json{{"text", doc_c}}.dump() + "\n");
  write_gzip(dir + "/mixed/3.txt.gz", doc_a);
  DataConfig mixed;
  mixed.sources = {dir + "/mixed"};
  mixed.dataset_dir = dir + "/cache";
  mixed.tokenizer.vocab_size = 300;
  const PreparedDataset a = prepare_dataset(mixed);
  // Every line of every document is in the shards once (the exact order is pinned by PrepareStream tests).
  const Tokenizer tok = Tokenizer::load(a.tokenizer_model);
  const auto decoded = [&](const std::vector<std::string>& shards) {
    const TokenStream stream = TokenStream::open(shards);
    std::vector<uint32_t> ids(stream.size());
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = stream.at(i);
    return tok.decode(ids);
  };
  EXPECT_EQ(sorted_lines(decoded(a.train_shards) + decoded(a.val_shards)), sorted_lines(doc_a + doc_b + doc_c + doc_a));
  EXPECT_GT(a.val_tokens, 0u);
  mixed.text_field = "body";  // a JSON Lines source is read by field: another field is another dataset
  EXPECT_THROW(prepare_dataset(mixed), UsageError);
}

}  // namespace
}  // namespace ssmax
