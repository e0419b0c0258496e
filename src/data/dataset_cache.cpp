#include "data/dataset_cache.h"

#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "data/document_index.h"
#include "data/token_stream.h"
#include "data/tokenizer.h"
#include "util/errors.h"
#include "util/files.h"
#include "util/hash.h"

namespace ssmax {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kQuickDir = ".quick";
constexpr const char* kRebuild = "delete the dataset directory and run `ssmax-gpt prepare CONFIG`";

// Everything besides the sources that changes the dataset. `model_identity` stands for a given tokenizer model.
void hash_settings(Hasher64& key, const DataConfig& data, const std::vector<SourceFile>& files,
                   const std::string& model_identity) {
  key.update_field("ssmax-gpt dataset").update_u64(kDatasetFormat);
  if (!data.tokenizer.model.empty()) {
    key.update_field("model").update_field(model_identity);
  } else {
    key.update_field("train").update_u64(static_cast<uint64_t>(data.tokenizer.vocab_size));
    key.update_field(data.tokenizer.model_type).update_u64(data.tokenizer.sample_mb);
  }
  key.update_field(json(data.val_fraction).dump());  // shortest exact decimal form
  key.update_u64(data.shard_tokens);
  const bool json_lines =
      std::any_of(files.begin(), files.end(), [](const SourceFile& f) { return is_json_lines(f.path); });
  if (json_lines) key.update_field("text_field").update_field(data.text_field);
  // Only where it changes something (plain-text sources split on blank lines), so the default keys stay as they were.
  const bool plain =
      std::any_of(files.begin(), files.end(), [](const SourceFile& f) { return !is_json_lines(f.path); });
  if (plain && data.text_documents != "file") key.update_field("text_documents").update_field(data.text_documents);
  key.update_u64(files.size());
}

}  // namespace

std::string quick_key(const DataConfig& data, const std::vector<SourceFile>& files) {
  Hasher64 key;
  std::string model;
  if (!data.tokenizer.model.empty()) {
    const SourceFile m = stat_source(data.tokenizer.model);
    model = m.path + ":" + std::to_string(m.bytes) + ":" + std::to_string(m.mtime_ns);
  }
  hash_settings(key.update_field("quick"), data, files, model);
  for (const auto& f : files)
    key.update_field(f.path).update_u64(f.bytes).update_u64(static_cast<uint64_t>(f.mtime_ns));
  return key.hex();
}

std::string content_key(const DataConfig& data, const std::vector<SourceFile>& files,
                        const std::vector<std::string>& source_hashes) {
  Hasher64 key;
  const std::string model = data.tokenizer.model.empty() ? "" : hash_hex(hash_file(data.tokenizer.model));
  hash_settings(key, data, files, model);
  for (size_t i = 0; i < files.size(); ++i) key.update_field(source_hashes.at(i)).update_u64(files[i].bytes);
  return key.hex();
}

std::string find_by_quick_key(const std::string& dataset_dir, const std::string& quick) {
  const std::string record = dataset_dir + "/" + kQuickDir + "/" + quick;
  std::error_code ec;
  if (!fs::is_regular_file(record, ec)) return "";
  try {
    const std::string key = read_file(record);
    const std::string dir = dataset_dir + "/" + key;
    return key.size() == 16 && dataset_complete(dir) ? dir : "";
  } catch (const RuntimeFailure&) {
    return "";
  }
}

void record_quick_key(const std::string& dataset_dir, const std::string& quick, const std::string& key) {
  std::error_code ec;
  fs::create_directories(dataset_dir + "/" + kQuickDir, ec);
  write_file_atomic(dataset_dir + "/" + kQuickDir + "/" + quick, key);
}

bool dataset_complete(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_regular_file(dir + "/meta.json", ec)) return false;
  try {
    const json meta = json::parse(read_file(dir + "/meta.json"));
    const json& files = meta.at("files");
    std::vector<std::string> names{files.at("tokenizer_model").get<std::string>()};
    for (const char* split : {"train_shards", "val_shards"})
      for (const auto& name : files.at(split)) names.push_back(name.get<std::string>());
    if (meta.at("format").get<int>() >= 4)
      for (const char* index : {"train_documents", "val_documents"})
        names.push_back(files.at(index).get<std::string>());
    for (const auto& name : names)
      if (!fs::is_regular_file(dir + "/" + name, ec)) return false;
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

void remove_interrupted_builds(const std::string& dataset_dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dataset_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(".tmp-", 0) != 0) continue;
    const size_t dash = name.rfind('-');
    const long pid = std::atol(name.c_str() + dash + 1);
    if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
      spdlog::info("prepare: removing {} left by an interrupted build (builds restart from the beginning)",
                   entry.path().string());
      fs::remove_all(entry.path(), ec);
    }
  }
}

std::string dataset_fingerprint(const std::string& dir, const std::string& model, const std::vector<std::string>& train,
                                const std::vector<std::string>& val, const std::vector<std::string>& documents) {
  Hasher64 fp;
  const auto add = [&](const std::string& label, const std::string& name) {
    const std::string path = dir + "/" + name;
    fp.update_field(label).update_u64(fs::file_size(path));
    hash_file_into(fp, path);
  };
  add(model, model);
  for (const auto* split : {&train, &val}) {
    for (const auto& name : *split) add(split->size() == 1 ? (split == &train ? "train.bin" : "val.bin") : name, name);
  }
  for (const auto& name : documents) add(name, name);
  return fp.hex();
}

namespace {

json read_meta(const std::string& meta_path) {
  std::error_code ec;
  if (!fs::is_regular_file(meta_path, ec))
    throw RuntimeFailure(meta_path + ": missing — not a prepared dataset (run `ssmax-gpt prepare CONFIG`)");
  try {
    return json::parse(read_file(meta_path));
  } catch (const json::exception& e) {
    throw RuntimeFailure(meta_path + ": unreadable (" + e.what() + "); " + kRebuild);
  }
}

[[noreturn]] void invalid_field(const std::string& meta_path, const json::exception& e) {
  throw RuntimeFailure(meta_path + ": missing or invalid field (" + e.what() + "); " + kRebuild);
}

}  // namespace

void check_prepared(const DataConfig& data) {
  if (data.prepared.empty()) return;
  if (!fs::is_directory(data.prepared))
    throw UsageError("data.prepared = '" + data.prepared +
                     "': no such directory (give a dataset directory that "
                     "`prepare` wrote, <dataset_dir>/<key>, or leave it empty to prepare data.sources)");
  if (data.tokenizer.model.empty()) return;
  const std::string meta_path = data.prepared + "/meta.json";
  std::string model;
  try {
    model = data.prepared + "/" + read_meta(meta_path).at("files").at("tokenizer_model").get<std::string>();
  } catch (const json::exception& e) {
    invalid_field(meta_path, e);
  }
  // The content, as the dataset's key identifies its given tokenizer (content_key): two tokenizers of one size give
  // the same ids to other pieces.
  if (hash_file(model) != hash_file(data.tokenizer.model))
    throw UsageError("data.prepared = '" + data.prepared + "' was encoded with " + model +
                     ", another tokenizer than data.tokenizer.model = '" + data.tokenizer.model +
                     "' (their contents differ, so its ids mean other pieces); leave data.prepared empty to prepare "
                     "data.sources with that tokenizer");
}

PreparedDataset load_prepared_dataset(const std::string& dir) {
  const std::string meta_path = dir + "/meta.json";
  std::error_code ec;
  const json meta = read_meta(meta_path);
  PreparedDataset ds;
  ds.dir = dir;
  try {
    const int format = meta.at("format").get<int>();
    if (format > kDatasetFormat) {
      throw RuntimeFailure(meta_path + ": dataset format " + std::to_string(format) + " comes from a newer ssmax-gpt " +
                           "(this build reads formats 1-" + std::to_string(kDatasetFormat) + "); " + kRebuild);
    }
    const auto& files = meta.at("files");
    ds.tokenizer_model = dir + "/" + files.at("tokenizer_model").get<std::string>();
    // Formats 1 and 2 had one shard per split.
    const auto shards = [&](const char* list, const char* single) {
      std::vector<std::string> paths;
      if (format <= 2) return std::vector<std::string>{dir + "/" + files.at(single).get<std::string>()};
      for (const auto& name : files.at(list)) paths.push_back(dir + "/" + name.get<std::string>());
      return paths;
    };
    ds.train_shards = shards("train_shards", "train_shard");
    ds.val_shards = shards("val_shards", "val_shard");
    ds.vocab_size = meta.at("vocab_size").get<int>();
    ds.fingerprint = meta.at("fingerprint").get<std::string>();
    ds.train_tokens = meta.at("train_tokens").get<uint64_t>();
    ds.val_tokens = meta.at("val_tokens").get<uint64_t>();
    ds.unigram_entropy_nats = meta.at("unigram_entropy_nats").get<double>();
    // Formats 1-3 leave the boundaries unknown (empty paths): never guessed from the token stream.
    if (format >= 4) {
      ds.train_documents = dir + "/" + files.at("train_documents").get<std::string>();
      ds.val_documents = dir + "/" + files.at("val_documents").get<std::string>();
      ds.document_end_token = meta.at("document_end_token").get<int>();
    }
  } catch (const json::exception& e) {
    invalid_field(meta_path, e);
  }
  std::vector<std::string> paths{ds.tokenizer_model};
  paths.insert(paths.end(), ds.train_shards.begin(), ds.train_shards.end());
  paths.insert(paths.end(), ds.val_shards.begin(), ds.val_shards.end());
  for (const auto* index : {&ds.train_documents, &ds.val_documents})
    if (!index->empty()) paths.push_back(*index);
  for (const auto& path : paths)
    if (!fs::is_regular_file(path, ec))
      throw RuntimeFailure(path + ": missing from the prepared dataset (" + kRebuild + ")");
  // The shards must have been encoded with exactly this tokenizer, or every id means another piece.
  const int tok_vocab = Tokenizer::load(ds.tokenizer_model).vocab_size();
  for (const auto* split : {&ds.train_shards, &ds.val_shards}) {
    const TokenStream stream = TokenStream::open(*split);
    if (static_cast<int>(stream.vocab_size()) != tok_vocab || ds.vocab_size != tok_vocab) {
      throw RuntimeFailure("tokenizer/shard vocabulary mismatch: " + ds.tokenizer_model + " has " +
                           std::to_string(tok_vocab) + " pieces but " + stream.name() + " was encoded with " +
                           std::to_string(stream.vocab_size()) + " (meta.json says " + std::to_string(ds.vocab_size) +
                           "); " + kRebuild);
    }
    const uint64_t expected = split == &ds.train_shards ? ds.train_tokens : ds.val_tokens;
    if (stream.size() != expected) {
      throw RuntimeFailure(stream.name() + ": holds " + std::to_string(stream.size()) + " tokens but meta.json says " +
                           std::to_string(expected) + "; " + kRebuild);
    }
    const bool train = split == &ds.train_shards;
    const std::string& index = train ? ds.train_documents : ds.val_documents;
    if (!index.empty())  // checks it all, naming the file
      (train ? ds.train_document_count : ds.val_document_count) = DocumentIndex::open(index, stream.size()).documents();
  }
  if (ds.document_end_token < -1 || ds.document_end_token >= tok_vocab)
    throw RuntimeFailure(meta_path + ": document_end_token " + std::to_string(ds.document_end_token) +
                         " is outside the vocabulary of " + std::to_string(tok_vocab) + "; " + kRebuild);
  return ds;
}

}  // namespace ssmax
