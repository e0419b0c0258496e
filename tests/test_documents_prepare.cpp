// Prepare's documents (dataset format 4): the end-of-document token and each split's boundary index against
// expectations built from the generated documents and a brute-force scan of the streams; datasets of format 3 still
// load and train, with boundaries unknown; a format-4 dataset missing or damaging an index is refused, naming it.
#include <gtest/gtest.h>

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
#include "data/token_stream.h"
#include "data/tokenizer.h"
#include "test_util.h"
#include "train/trainer.h"
#include "util/errors.h"
#include "util/files.h"

namespace ssmax {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

void write(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

std::string random_line(std::mt19937& rng) {  // 12 characters: a 271-piece tokenizer fits
  std::string line;
  const int words = 1 + static_cast<int>(rng() % 10);
  for (int w = 0; w < words; ++w) line += (w ? " " : "") + std::to_string(rng() % 1000) + "x";
  return line + "\n";
}

std::vector<uint32_t> ids_of(const std::vector<std::string>& shards) {
  const TokenStream stream = TokenStream::open(shards);
  std::vector<int64_t> wide(stream.size());
  stream.copy_to(0, wide.size(), wide.data());
  return std::vector<uint32_t>(wide.begin(), wide.end());
}

std::vector<uint64_t> starts_of(const std::string& index_path, uint64_t tokens) {
  const DocumentIndex index = DocumentIndex::open(index_path, tokens);
  std::vector<uint64_t> starts;
  for (size_t i = 0; i < index.documents(); ++i) starts.push_back(index.start(i));
  return starts;
}

struct Expected {
  std::vector<uint32_t> stream;
  std::vector<uint64_t> gaps;  // offsets where the split's next piece is not the corpus's next piece
  size_t cuts = 0;             // gaps inside a document (not right after its end token)
  std::vector<uint64_t> starts;
};

// Both splits as the format promises them, from the documents alone: pieces in corpus order, piece i to
// validation when i % period == period − 1, the end token after each document's last piece; a document begins at
// the stream's start, after an end token and at a gap.
std::pair<Expected, Expected> expected_splits(const std::vector<std::string>& docs, const Tokenizer& tok,
                                              uint64_t source_bytes, double val_fraction) {
  const size_t period = std::max<size_t>(2, static_cast<size_t>(std::lround(1.0 / val_fraction)));
  const size_t piece_bytes = std::clamp<size_t>(source_bytes / (4 * period), 1, 32 * 1024);
  const uint32_t eos = static_cast<uint32_t>(tok.special_tokens().eos.id);
  std::pair<Expected, Expected> splits;
  std::vector<int64_t> last_piece = {-1, -1};
  int64_t piece = 0;
  for (const auto& doc : docs) {
    const auto pieces = cut_document(doc, piece_bytes);
    for (size_t k = 0; k < pieces.size(); ++k, ++piece) {
      const bool val = piece % period == period - 1;
      Expected& split = val ? splits.second : splits.first;
      const bool gap = last_piece[val] >= 0 && piece != last_piece[val] + 1;
      if (gap) split.gaps.push_back(split.stream.size());
      if (gap && split.stream.back() != eos) ++split.cuts;
      if (split.stream.empty() || gap || split.stream.back() == eos) split.starts.push_back(split.stream.size());
      last_piece[val] = piece;
      const auto ids = tok.encode(pieces[k]);
      split.stream.insert(split.stream.end(), ids.begin(), ids.end());
      if (k + 1 == pieces.size()) split.stream.push_back(eos);
    }
  }
  return splits;
}

// The brute-force scan: {0} ∪ {after every end token} ∪ the gaps, inside the stream.
std::vector<uint64_t> scanned_starts(const std::vector<uint32_t>& stream, uint32_t eos,
                                     const std::vector<uint64_t>& gaps) {
  std::set<uint64_t> starts(gaps.begin(), gaps.end());
  if (!stream.empty()) starts.insert(0);
  for (uint64_t i = 0; i + 1 < stream.size(); ++i)
    if (stream[i] == eos) starts.insert(i + 1);
  return {starts.begin(), starts.end()};
}

DataConfig data_config(const std::string& source, const std::string& cache) {
  DataConfig data;
  data.sources = {source};
  data.dataset_dir = cache;
  data.tokenizer.vocab_size = 271;
  data.val_fraction = 0.2;  // period 5: many gaps
  return data;
}

// Returns the number of the train split's documents that a validation piece cut in two.
size_t expect_index_matches(const PreparedDataset& ds, const std::vector<std::string>& docs,
                            const std::string& source) {
  const Tokenizer tok = Tokenizer::load(ds.tokenizer_model);
  const uint32_t eos = static_cast<uint32_t>(tok.special_tokens().eos.id);
  EXPECT_EQ(ds.document_end_token, 2);
  const auto [train, val] = expected_splits(docs, tok, fs::file_size(source), 0.2);
  const std::vector<uint32_t> train_ids = ids_of(ds.train_shards), val_ids = ids_of(ds.val_shards);
  EXPECT_EQ(train_ids, train.stream);
  EXPECT_EQ(val_ids, val.stream);
  const auto train_starts = starts_of(ds.train_documents, train_ids.size());
  const auto val_starts = starts_of(ds.val_documents, val_ids.size());
  EXPECT_EQ(train_starts, scanned_starts(train_ids, eos, train.gaps));
  EXPECT_EQ(val_starts, scanned_starts(val_ids, eos, val.gaps));
  EXPECT_EQ(train_starts, train.starts);
  EXPECT_EQ(val_starts, val.starts);
  const json meta = json::parse(read_file(ds.dir + "/meta.json"));
  EXPECT_EQ(meta.at("format"), 4);
  EXPECT_EQ(meta.at("document_end_token"), 2);
  EXPECT_EQ(meta.at("train_documents"), train_starts.size());
  EXPECT_EQ(meta.at("val_documents"), val_starts.size());
  return train.cuts;
}

TEST(PrepareDocuments, JsonLinesRecordsEachEndWithTheEndTokenAndBeginADocument) {
  const std::string dir = test_dir("docs-jsonl");
  std::mt19937 rng(21);
  std::vector<std::string> docs;
  std::string jsonl;
  for (int i = 0; i < 400; ++i) {
    std::string text;
    for (int l = static_cast<int>(rng() % 3); l >= 0; --l) text += random_line(rng);
    if (i % 3 == 0) text.pop_back();  // no final newline: prepare adds one
    if (i == 17) text.clear();        // an empty record: no document at all
    jsonl += json{{"text", text}}.dump() + "\n";
    if (!text.empty()) docs.push_back(text.back() == '\n' ? text : text + "\n");
  }
  write(dir + "/docs.jsonl", jsonl);
  const PreparedDataset ds = prepare_dataset(data_config(dir + "/docs.jsonl", dir + "/cache"), 2);
  // Every record is shorter than one piece, so each is one piece and one document.
  const size_t piece_bytes = fs::file_size(dir + "/docs.jsonl") / 20;
  for (const auto& d : docs) ASSERT_LT(d.size(), piece_bytes);
  EXPECT_EQ(expect_index_matches(ds, docs, dir + "/docs.jsonl"), 0u);  // every piece ends its document
  EXPECT_EQ(DocumentIndex::open(ds.train_documents, ds.train_tokens).documents() +
                DocumentIndex::open(ds.val_documents, ds.val_tokens).documents(),
            docs.size());
}

TEST(PrepareDocuments, BlankLineDocumentsSpanPiecesAndSplitsAtGaps) {
  const std::string dir = test_dir("docs-blank-line");
  std::mt19937 rng(22);
  std::string text;
  std::vector<std::string> docs;
  for (int d = 0; d < 120; ++d) {
    std::string doc;
    // Four long documents, about a fifth of the corpus each (several pieces), among many short ones.
    const int lines = d % 30 == 0 ? 400 + static_cast<int>(rng() % 60) : 1 + static_cast<int>(rng() % 8);
    for (int l = 0; l < lines; ++l) doc += random_line(rng);
    docs.push_back(doc);
    text += doc + (d % 4 == 0 ? "\n \t\r\n" : "\n");
  }
  write(dir + "/paragraphs.txt", text);
  DataConfig data = data_config(dir + "/paragraphs.txt", dir + "/cache");
  data.text_documents = "blank_line";
  const PreparedDataset ds = prepare_dataset(data, 2);
  EXPECT_GE(expect_index_matches(ds, docs, dir + "/paragraphs.txt"), 2u);  // long documents cut by validation
  EXPECT_GT(DocumentIndex::open(ds.train_documents, ds.train_tokens).documents(), docs.size() * 7 / 10);

  // The default reads the same file as one document: another dataset (both keys), one end token in all. (Its
  // tokenizer is the one above: the blank lines' '\t' and '\r' would not fit a 271-piece vocabulary of their own.)
  DataConfig whole = data;
  whole.text_documents = "file";
  EXPECT_NE(quick_key(whole, list_sources(whole)), quick_key(data, list_sources(data)));
  EXPECT_NE(content_key(whole, list_sources(whole), {"h"}), content_key(data, list_sources(data), {"h"}));
  whole.tokenizer.model = ds.tokenizer_model;
  const PreparedDataset one = prepare_dataset(whole, 2);
  EXPECT_NE(one.dir, ds.dir);
  const auto train_ids = ids_of(one.train_shards), val_ids = ids_of(one.val_shards);
  EXPECT_EQ(std::count(train_ids.begin(), train_ids.end(), 2u) + std::count(val_ids.begin(), val_ids.end(), 2u), 1);
}

TEST(PrepareDocuments, TextDocumentsDoNotChangeTheKeysOfJsonLinesCorpora) {
  const std::string dir = test_dir("docs-keys");
  write(dir + "/a.jsonl", "{\"text\": \"one\"}\n{\"text\": \"two\"}\n");
  DataConfig data = data_config(dir + "/a.jsonl", dir + "/cache");
  const auto files = list_sources(data);
  const std::string quick = quick_key(data, files), content = content_key(data, files, {"h"});
  data.text_documents = "blank_line";
  EXPECT_EQ(quick_key(data, files), quick);
  EXPECT_EQ(content_key(data, files, {"h"}), content);
}

// ---- older and damaged datasets ----

// A dataset as format 3 wrote it: shards of the documents' text without end tokens, meta.json without indexes.
std::string write_format3(const std::string& dir, const std::string& model, const std::string& text) {
  const std::string out = dir + "/v3";
  fs::create_directories(out);
  fs::copy_file(model, out + "/tokenizer.model");
  const Tokenizer tok = Tokenizer::load(out + "/tokenizer.model");
  const std::vector<uint32_t> ids = tok.encode(text);
  const size_t cut = ids.size() * 9 / 10;
  const uint32_t vocab = static_cast<uint32_t>(tok.vocab_size());
  write_shard(out + "/train-000000.bin", std::vector<uint32_t>(ids.begin(), ids.begin() + cut), vocab);
  write_shard(out + "/val-000000.bin", std::vector<uint32_t>(ids.begin() + cut, ids.end()), vocab);
  const json meta = {
      {"format", 3},
      {"key", "0123456789abcdef"},
      {"created", "2026-12-01T00:00:00Z"},
      {"vocab_size", vocab},
      {"train_tokens", cut},
      {"val_tokens", ids.size() - cut},
      {"token_bytes", 2},
      {"shard_tokens", 100000000},
      {"unigram_entropy_nats", 4.0},
      {"fingerprint", dataset_fingerprint(out, "tokenizer.model", {"train-000000.bin"}, {"val-000000.bin"})},
      {"files",
       {{"tokenizer_model", "tokenizer.model"},
        {"train_shards", json::array({"train-000000.bin"})},
        {"val_shards", json::array({"val-000000.bin"})}}}};
  write(out + "/meta.json", meta.dump(2));
  return out;
}

TEST(PrepareDocuments, AFormat3DatasetLoadsWithUnknownBoundariesAndTrains) {
  const std::string dir = test_dir("docs-format3");
  Config config = tiny_training_config(dir, "softmax");
  const PreparedDataset built = prepare_dataset(config.data, 1);
  const std::string old = write_format3(dir, built.tokenizer_model, read_file(config.data.sources.at(0)));
  EXPECT_TRUE(dataset_complete(old));
  const PreparedDataset ds = load_prepared_dataset(old);
  EXPECT_EQ(ds.train_documents, "");
  EXPECT_EQ(ds.val_documents, "");
  EXPECT_EQ(ds.document_end_token, -1);
  // Its fingerprint is the one format 3 computed: tokenizer and shards only.
  EXPECT_EQ(ds.fingerprint, dataset_fingerprint(old, "tokenizer.model", {"train-000000.bin"}, {"val-000000.bin"}));
  const TokenStream stream = TokenStream::open(ds.train_shards);
  const BatchLoader loader(stream, 32, 4, 1);
  const Batch batch = loader.train_batch(0, 0);
  EXPECT_EQ(batch.inputs.sizes(), (std::vector<int64_t>{4, 32}));
  EXPECT_FALSE(batch.positions.defined());
  config.data.prepared = old;
  config.out_dir = dir + "/run";
  const TrainSummary summary = train(config);
  EXPECT_EQ(summary.steps, config.train.max_steps);
  EXPECT_TRUE(std::isfinite(summary.final_val_loss));
}

TEST(PrepareDocuments, AFormat4DatasetWithoutOrWithADamagedIndexIsRefused) {
  const std::string dir = test_dir("docs-damaged");
  Config config = tiny_training_config(dir, "softmax");
  const PreparedDataset ds = prepare_dataset(config.data, 1);
  ASSERT_FALSE(ds.train_documents.empty());
  EXPECT_EQ(fs::path(ds.val_documents).filename(), "val-documents.bin");
  // The index is part of the fingerprint: another set of boundaries is another dataset to a checkpoint.
  const json meta = json::parse(read_file(ds.dir + "/meta.json"));
  EXPECT_NE(ds.fingerprint, dataset_fingerprint(ds.dir, "tokenizer.model",
                                                meta["files"]["train_shards"].get<std::vector<std::string>>(),
                                                meta["files"]["val_shards"].get<std::vector<std::string>>()));
  const std::string saved = read_file(ds.val_documents);
  fs::remove(ds.val_documents);
  EXPECT_FALSE(dataset_complete(ds.dir));
  std::string message = error_of([&] { load_prepared_dataset(ds.dir); });
  EXPECT_NE(message.find(ds.val_documents), std::string::npos) << message;
  EXPECT_NE(message.find("missing"), std::string::npos) << message;
  write(ds.val_documents, saved.substr(0, saved.size() - 8));  // one start short
  message = error_of([&] { load_prepared_dataset(ds.dir); });
  EXPECT_NE(message.find(ds.val_documents + ": truncated"), std::string::npos) << message;
  // An index of another split's length.
  fs::copy_file(ds.train_documents, ds.val_documents, fs::copy_options::overwrite_existing);
  message = error_of([&] { load_prepared_dataset(ds.dir); });
  EXPECT_NE(message.find(ds.val_documents), std::string::npos) << message;
  EXPECT_NE(message.find("ssmax-gpt prepare"), std::string::npos) << message;
}

}  // namespace
}  // namespace ssmax
