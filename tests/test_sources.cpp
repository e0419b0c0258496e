// Source formats of data.sources: plain text, JSON Lines (a text field per record) and gzip of either; and a
// dataset prepared from such a mix has the corpus of the same text given as one plain file.
#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "data/prepare.h"
#include "data/sources.h"
#include "test_util.h"
#include "util/errors.h"

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

std::string usage_error(const std::string& path, const std::string& field = "text") {
  try {
    read_source_text(path, field);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "(no usage error)";
}

TEST(Sources, PlainTextIsReadAsItIs) {
  const std::string dir = test_dir("sources-plain");
  write(dir + "/a.txt", "line one\nline two");
  EXPECT_EQ(read_source_text(dir + "/a.txt", "text"), "line one\nline two");
}

TEST(Sources, JsonLinesGiveTheTextFieldOfEachRecord) {
  const std::string dir = test_dir("sources-jsonl");
  write(dir + "/a.jsonl",
        "{\"id\": 1, \"text\": \"first document\"}\n\n"
        "{\"text\": \"second\\nwith two lines\\n\", \"meta\": {\"x\": 1}}\r\n"
        "{\"text\": \"\"}\n{\"text\": \"caf\\u00e9 last\"}");
  EXPECT_EQ(read_source_text(dir + "/a.jsonl", "text"), "first document\nsecond\nwith two lines\ncafé last\n");
  write(dir + "/b.jsonl", "{\"content\": \"other field\"}\n");
  EXPECT_EQ(read_source_text(dir + "/b.jsonl", "content"), "other field\n");
}

TEST(Sources, GzipIsDecompressedForTextAndJsonLines) {
  const std::string dir = test_dir("sources-gzip");
  write_gzip(dir + "/a.txt.gz", "compressed text\n");
  write_gzip(dir + "/b.jsonl.gz", "{\"text\": \"compressed record\"}\n");
  EXPECT_EQ(read_source_text(dir + "/a.txt.gz", "text"), "compressed text\n");
  EXPECT_EQ(read_source_text(dir + "/b.jsonl.gz", "text"), "compressed record\n");
}

TEST(Sources, BadRecordsAndBrokenGzipNameTheFileAndLine) {
  const std::string dir = test_dir("sources-bad");
  write(dir + "/a.jsonl", "{\"text\": \"ok\"}\n{\"text\": 3, \"body\": \"x\"}\n");
  EXPECT_NE(usage_error(dir + "/a.jsonl").find("a.jsonl:2: no string field \"text\" (data.text_field; this record "
                                               "has: body, text)"), std::string::npos);
  write(dir + "/b.jsonl", "{\"text\": \"ok\"}\nnot json\n");
  EXPECT_NE(usage_error(dir + "/b.jsonl").find("b.jsonl:2: not a JSON object"), std::string::npos);
  write_gzip(dir + "/c.txt.gz", std::string(100000, 'x'));
  const std::string whole = slurp(dir + "/c.txt.gz");
  write(dir + "/cut.txt.gz", whole.substr(0, whole.size() / 2));
  EXPECT_THROW(read_source_text(dir + "/cut.txt.gz", "text"), RuntimeFailure);
}

TEST(Sources, AMixOfFormatsPreparesTheSameCorpusAsPlainText) {
  const std::string dir = test_dir("sources-mix");
  std::string doc_a, doc_b, doc_c;
  for (int i = 0; i < 400; ++i) {
    doc_a += "the king went up to the city number " + std::to_string(i) + ".\n";
    doc_b += "a shepherd spake unto the river " + std::to_string(i * 7 % 13) + ".\n";
    doc_c += "the prophet looked upon the mountain " + std::to_string(i % 5) + ".\n";
  }
  std::filesystem::create_directories(dir + "/mixed");
  write(dir + "/mixed/1.txt", doc_a);
  write_gzip(dir + "/mixed/2.jsonl.gz", nlohmann::json{{"text", doc_b}}.dump() + "\n" +
                                            nlohmann::json{{"text", doc_c}}.dump() + "\n");
  write_gzip(dir + "/mixed/3.txt.gz", doc_a);
  write(dir + "/plain.txt", doc_a + doc_b + doc_c + doc_a);
  DataConfig mixed;
  mixed.sources = {dir + "/mixed"};
  mixed.dataset_dir = dir + "/cache";
  mixed.tokenizer.vocab_size = 300;
  DataConfig plain = mixed;
  plain.sources = {dir + "/plain.txt"};
  const PreparedDataset a = prepare_dataset(mixed), b = prepare_dataset(plain);
  EXPECT_NE(a.dir, b.dir);  // different sources, different cache entries ...
  EXPECT_EQ(slurp(a.dir + "/corpus.txt"), slurp(b.dir + "/corpus.txt"));  // ... with the same text
  EXPECT_EQ(slurp(a.train_shard), slurp(b.train_shard));
  EXPECT_EQ(slurp(a.val_shard), slurp(b.val_shard));
  mixed.text_field = "body";  // a JSON Lines source is read by field: another field is another dataset
  EXPECT_THROW(prepare_dataset(mixed), UsageError);
}

}  // namespace
}  // namespace ssmax
