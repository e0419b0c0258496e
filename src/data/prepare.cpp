#include "data/prepare.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <string_view>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "data/shard.h"
#include "data/sources.h"
#include "data/tokenizer.h"
#include "util/errors.h"
#include "util/files.h"
#include "util/hash.h"

namespace ssmax {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// Bump when anything about how a dataset is built changes (split, tokenizer flags, file layout):
// the cache key changes with it, so old datasets are rebuilt rather than silently reused.
// 2: .jsonl sources give their records' text field, .gz sources are decompressed (1 read both as raw bytes).
constexpr int kFormatVersion = 2;
constexpr size_t kPieceBytes = 32 * 1024;  // split granularity: big enough to keep context together
constexpr const char* kMeta = "meta.json";
constexpr const char* kCorpus = "corpus.txt";
constexpr const char* kModel = "tokenizer.model";
constexpr const char* kTrain = "train.bin";
constexpr const char* kVal = "val.bin";
constexpr const char* kRebuild = "delete the dataset directory and run `ssmax-gpt prepare CONFIG`";

struct SourceFile {
  std::string path;
  uint64_t bytes = 0;
  std::string hash;
};

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Expands sources into regular files, each directory's files sorted by path so the corpus (and the
// cache key) does not depend on directory listing order. Skips hidden entries and the dataset cache
// itself, which would otherwise feed old corpora back in when a source directory contains it.
std::vector<SourceFile> list_sources(const DataConfig& data) {
  if (data.sources.empty())
    throw UsageError("data.sources: empty list (give at least one text file or directory)");
  std::error_code ec;
  const fs::path cache = fs::weakly_canonical(data.dataset_dir, ec);
  std::vector<SourceFile> files;
  for (const auto& source : data.sources) {
    if (!fs::exists(source, ec)) {
      throw UsageError("data.sources: '" + source +
                       "' does not exist (give a text file or directory; for the default corpus "
                       "run scripts/fetch_kjv.sh)");
    }
    if (fs::is_regular_file(source, ec)) {
      files.push_back({source, 0, ""});
      continue;
    }
    if (!fs::is_directory(source, ec)) {
      throw UsageError("data.sources: '" + source + "' is neither a regular file nor a directory");
    }
    std::vector<std::string> found;
    for (auto it = fs::recursive_directory_iterator(source);
         it != fs::recursive_directory_iterator(); ++it) {
      const std::string name = it->path().filename().string();
      const bool skip = name[0] == '.' || fs::weakly_canonical(it->path(), ec) == cache;
      if (skip) {
        if (it->is_directory(ec)) it.disable_recursion_pending();
        continue;
      }
      if (it->is_regular_file(ec)) found.push_back(it->path().string());
    }
    std::sort(found.begin(), found.end());
    for (auto& f : found) files.push_back({std::move(f), 0, ""});
  }
  for (auto& f : files) {
    Hasher64 h;
    f.bytes = hash_file_into(h, f.path);
    f.hash = h.hex();
  }
  return files;
}

std::string cache_key(const DataConfig& data, const std::vector<SourceFile>& files) {
  Hasher64 key;
  key.update_field("ssmax-gpt dataset").update_u64(kFormatVersion);
  key.update_u64(files.size());
  for (const auto& f : files) key.update_field(f.hash).update_u64(f.bytes);
  if (!data.tokenizer.model.empty()) {
    key.update_field("model").update_field(hash_hex(hash_file(data.tokenizer.model)));
  } else {
    key.update_field("train").update_u64(static_cast<uint64_t>(data.tokenizer.vocab_size));
    key.update_field(data.tokenizer.model_type);
  }
  key.update_field(json(data.val_fraction).dump());  // shortest exact decimal form
  const auto json_lines = [](const SourceFile& f) {
    const auto ends_with = [&f](std::string_view suffix) {
      return f.path.size() >= suffix.size() && f.path.compare(f.path.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    return ends_with(".jsonl") || ends_with(".jsonl.gz");
  };
  if (std::any_of(files.begin(), files.end(), json_lines)) key.update_field("text_field").update_field(data.text_field);
  return key.hex();
}

void fsync_path(const std::string& path, bool directory = false) {
  const int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Cuts text after the first newline at or beyond every `target` bytes (a longer line stays whole).
std::vector<std::string_view> cut_pieces(std::string_view text, size_t target) {
  std::vector<std::string_view> pieces;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.size();
    if (text.size() - start > target) {
      const size_t nl = text.find('\n', start + target - 1);
      if (nl != std::string_view::npos) end = nl + 1;
    }
    pieces.push_back(text.substr(start, end - start));
    start = end;
  }
  return pieces;
}

struct Split {
  std::vector<std::string_view> pieces;
  std::vector<bool> is_val;
  size_t piece_bytes = kPieceBytes;
};

// Every period-th piece goes to val: the validation text is spread over the whole corpus (all
// books, all authors) instead of being its last few percent.
Split split_corpus(std::string_view text, double val_fraction) {
  const size_t period = std::max<size_t>(2, static_cast<size_t>(std::lround(1.0 / val_fraction)));
  Split split;
  // A small corpus gets smaller pieces: about four periods' worth, so that val holds several pieces
  // and a short last piece cannot make it (nearly) empty.
  split.piece_bytes = std::clamp<size_t>(text.size() / (4 * period), 1, kPieceBytes);
  split.pieces = cut_pieces(text, split.piece_bytes);
  // Very long lines can still leave too few pieces: go smaller until one full period exists.
  while (split.pieces.size() < period && split.piece_bytes > 1) {
    split.piece_bytes /= 2;
    split.pieces = cut_pieces(text, split.piece_bytes);
  }
  if (split.pieces.size() < 2) {
    throw UsageError("data.sources: the corpus is a single line (" + std::to_string(text.size()) +
                     " bytes); it needs at least 2 lines to make a train and a val split");
  }
  split.is_val.resize(split.pieces.size());
  bool any_val = false;
  for (size_t i = 0; i < split.pieces.size(); ++i) {
    split.is_val[i] = i % period == period - 1;
    any_val = any_val || split.is_val[i];
  }
  if (!any_val) split.is_val.back() = true;
  return split;
}

// Encodes the pieces on all cores; results are stored by piece index, so the token stream is the
// same whatever the thread count.
std::vector<std::vector<uint32_t>> encode_pieces(const Tokenizer& tok,
                                                 const std::vector<std::string_view>& pieces,
                                                 size_t total_bytes) {
  std::vector<std::vector<uint32_t>> out(pieces.size());
  std::atomic<size_t> next{0}, done_bytes{0};
  std::atomic<int> next_decile{1};
  const bool verbose = total_bytes >= (1u << 20);  // percentages only where they are worth reading
  const auto t0 = Clock::now();
  std::exception_ptr error;
  std::atomic<bool> failed{false};
  auto work = [&] {
    try {
      for (size_t i; !failed && (i = next++) < pieces.size();) {
        out[i] = tok.encode(std::string(pieces[i]));
        const size_t done = done_bytes += pieces[i].size();
        int decile = next_decile;
        const int reached = static_cast<int>(done * 10 / total_bytes);
        if (verbose && reached >= decile && reached < 10 &&
            next_decile.compare_exchange_strong(decile, reached + 1)) {
          const double s = seconds_since(t0);
          spdlog::info("encoding: {}% ({:.1f} MB/s)", reached * 10, done / 1e6 / std::max(s, 1e-9));
        }
      }
    } catch (...) {
      if (!failed.exchange(true)) error = std::current_exception();
    }
  };
  const size_t n_threads = std::clamp<size_t>(std::thread::hardware_concurrency(), 1,
                                              std::min<size_t>(8, pieces.size()));
  std::vector<std::thread> threads;
  for (size_t t = 1; t < n_threads; ++t) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);
  return out;
}

double unigram_entropy(const std::vector<uint32_t>& ids, int vocab) {
  std::vector<uint64_t> counts(static_cast<size_t>(vocab), 0);
  for (uint32_t id : ids) ++counts[id];
  double h = 0;
  const double n = static_cast<double>(ids.size());
  for (uint64_t c : counts) {
    if (c) h -= (c / n) * std::log(c / n);
  }
  return h;
}

// Complete = meta.json parses and every file it names is there. Anything less is a leftover.
bool dataset_complete(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_regular_file(dir + "/" + kMeta, ec)) return false;
  try {
    const json meta = json::parse(read_file(dir + "/" + kMeta));
    for (const char* key : {"tokenizer_model", "train_shard", "val_shard"}) {
      if (!fs::is_regular_file(dir + "/" + meta.at("files").at(key).get<std::string>(), ec))
        return false;
    }
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

// Build directories of crashed runs (their process is gone) would otherwise pile up.
void remove_stale_builds(const std::string& dataset_dir, const std::string& key) {
  std::error_code ec;
  const std::string prefix = ".tmp-" + key + "-";
  for (const auto& entry : fs::directory_iterator(dataset_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const long pid = std::atol(name.c_str() + prefix.size());
    if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)
      fs::remove_all(entry.path(), ec);
  }
}

void build_dataset(const DataConfig& data, const std::vector<SourceFile>& files,
                   const std::string& key, const std::string& dir) {
  // Corpus: the files in order, a newline between two when the first lacks one.
  std::string corpus;
  for (const auto& f : files) {
    if (f.bytes == 0) continue;
    if (!corpus.empty() && corpus.back() != '\n') corpus += '\n';
    corpus += read_source_text(f.path, data.text_field);
  }
  if (corpus.empty())
    throw UsageError("data.sources: no text in the " + std::to_string(files.size()) +
                     " source file(s) (compressed files and JSON Lines records are all empty)");
  spdlog::info("data: {} source file(s), {:.2f} MB; building dataset {}", files.size(),
               corpus.size() / 1e6, dir);
  write_file_atomic(dir + "/" + kCorpus, corpus);

  const std::string model_path = dir + "/" + kModel;
  if (!data.tokenizer.model.empty()) {
    fs::copy_file(data.tokenizer.model, model_path, fs::copy_options::overwrite_existing);
    fsync_path(model_path);
  } else {
    spdlog::info("tokenizer: training {} with vocabulary {} on {:.2f} MB",
                 data.tokenizer.model_type, data.tokenizer.vocab_size, corpus.size() / 1e6);
    const auto t0 = Clock::now();
    try {
      train_tokenizer({dir + "/" + kCorpus, dir + "/tokenizer", data.tokenizer.vocab_size,
                       data.tokenizer.model_type});
    } catch (const RuntimeFailure& e) {
      // A vocabulary too small for the corpus's characters or too big for its text is a setting
      // to change (exit 2), not a crash; sentencepiece's own sentence says which bound applies.
      const std::string what = e.what();
      const size_t at = what.find("Vocabulary size");
      if (at == std::string::npos) throw;
      throw UsageError(
          "data.tokenizer.vocab_size: " + std::to_string(data.tokenizer.vocab_size) +
          " does not suit this corpus: " + what.substr(at, what.rfind(" (data.tokenizer") - at));
    }
    fsync_path(model_path);
    spdlog::info("tokenizer: trained in {:.1f} s", seconds_since(t0));
  }
  const Tokenizer tok = Tokenizer::load(model_path);
  const int vocab = tok.vocab_size();
  if (vocab != data.tokenizer.vocab_size) {
    spdlog::warn("tokenizer {} has {} pieces, not data.tokenizer.vocab_size={}; the shards use {}",
                 data.tokenizer.model.empty() ? model_path : data.tokenizer.model, vocab,
                 data.tokenizer.vocab_size, vocab);
  }

  const Split split = split_corpus(corpus, data.val_fraction);
  const auto t0 = Clock::now();
  auto encoded = encode_pieces(tok, split.pieces, corpus.size());
  std::vector<uint32_t> train, val;
  size_t train_pieces = 0;
  for (size_t i = 0; i < encoded.size(); ++i) {
    auto& dst = split.is_val[i] ? val : train;
    dst.insert(dst.end(), encoded[i].begin(), encoded[i].end());
    std::vector<uint32_t>().swap(encoded[i]);  // a large corpus should not be held twice
    train_pieces += split.is_val[i] ? 0 : 1;
  }
  const double s = seconds_since(t0);
  spdlog::info(
      "encoding: {} tokens in {:.1f} s ({:.1f} MB/s, {:.2f} bytes/token); split {} train / {} val "
      "pieces of ~{} KiB",
      train.size() + val.size(), s, corpus.size() / 1e6 / std::max(s, 1e-9),
      double(corpus.size()) / std::max<size_t>(1, train.size() + val.size()), train_pieces,
      split.pieces.size() - train_pieces, std::max<size_t>(1, split.piece_bytes / 1024));
  write_shard(dir + "/" + kTrain, train, static_cast<uint32_t>(vocab));
  write_shard(dir + "/" + kVal, val, static_cast<uint32_t>(vocab));

  Hasher64 fp;
  for (const char* name : {kModel, kTrain, kVal}) {
    const std::string path = dir + "/" + name;
    fp.update_field(name).update_u64(fs::file_size(path));
    hash_file_into(fp, path);
  }
  json sources = json::array();
  for (const auto& f : files)
    sources.push_back({{"path", f.path}, {"bytes", f.bytes}, {"hash", f.hash}});
  const size_t val_pieces = split.pieces.size() - train_pieces;
  // clang-format off
  const json meta = {
      {"format", kFormatVersion}, {"key", key}, {"created", utc_now()}, {"vocab_size", vocab},
      {"train_tokens", train.size()}, {"val_tokens", val.size()},
      {"unigram_entropy_nats", unigram_entropy(train, vocab)}, {"fingerprint", fp.hex()},
      {"corpus_bytes", corpus.size()}, {"val_fraction", data.val_fraction},
      {"split", {{"piece_bytes", split.piece_bytes}, {"train_pieces", train_pieces},
                 {"val_pieces", val_pieces}}},
      {"sources", sources},
      {"tokenizer", {{"source", data.tokenizer.model.empty() ? "trained" : data.tokenizer.model},
                     {"model_type", data.tokenizer.model_type},
                     {"requested_vocab_size", data.tokenizer.vocab_size},
                     {"settings", "normalization_rule_name=identity remove_extra_whitespaces=false "
                                  "add_dummy_prefix=false byte_fallback=true "
                                  "character_coverage=1.0 split_digits=true"}}},
      {"files", {{"corpus", kCorpus}, {"tokenizer_model", kModel}, {"train_shard", kTrain},
                 {"val_shard", kVal}}}};
  // clang-format on
  // Last, so its presence means everything above is on disk.
  write_file_atomic(dir + "/" + kMeta, meta.dump(2) + "\n");
}

PreparedDataset prepare_or_reuse(const DataConfig& data) {
  if (!(data.val_fraction > 0 && data.val_fraction <= 0.5)) {
    throw UsageError("data.val_fraction: " + std::to_string(data.val_fraction) +
                     " is out of range (must be > 0 and <= 0.5)");
  }
  if (!data.tokenizer.model.empty() && !fs::is_regular_file(data.tokenizer.model)) {
    throw UsageError(
        "data.tokenizer.model: '" + data.tokenizer.model +
        "' does not exist (give a sentencepiece .model file, or leave it empty to train one)");
  }
  const auto files = list_sources(data);
  if (std::all_of(files.begin(), files.end(), [](const SourceFile& f) { return f.bytes == 0; })) {
    std::string names;
    for (const auto& s : data.sources) names += (names.empty() ? "'" : ", '") + s + "'";
    throw UsageError("data.sources: no text in " + names + " (every file is empty)");
  }
  const std::string key = cache_key(data, files);
  const std::string dir = (fs::path(data.dataset_dir) / key).string();
  if (dataset_complete(dir)) {
    PreparedDataset ds = load_prepared_dataset(dir);
    ds.reused = true;
    spdlog::info("dataset cached at {} ({} train / {} val tokens)", dir, ds.train_tokens,
                 ds.val_tokens);
    return ds;
  }

  std::error_code ec;
  fs::create_directories(data.dataset_dir, ec);
  if (ec)
    throw RuntimeFailure(data.dataset_dir + ": cannot create dataset directory: " + ec.message());
  remove_stale_builds(data.dataset_dir, key);
  // Built aside and renamed into place: a crash never leaves a directory that looks complete.
  const std::string tmp =
      (fs::path(data.dataset_dir) / (".tmp-" + key + "-" + std::to_string(::getpid()))).string();
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) throw RuntimeFailure(tmp + ": cannot create: " + ec.message());
  const auto t_start = Clock::now();
  try {
    build_dataset(data, files, key, tmp);
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  // Another process may have finished the same dataset meanwhile: theirs is identical, keep it.
  if (dataset_complete(dir)) {
    fs::remove_all(tmp, ec);
  } else {
    fs::remove_all(dir, ec);  // an incomplete leftover
    if (::rename(tmp.c_str(), dir.c_str()) != 0) {
      const std::string why = std::strerror(errno);
      fs::remove_all(tmp, ec);
      if (!dataset_complete(dir))
        throw RuntimeFailure("cannot rename " + tmp + " to " + dir + ": " + why);
    }
  }
  fsync_path(data.dataset_dir, true);
  PreparedDataset ds = load_prepared_dataset(dir);
  spdlog::info("dataset built at {} in {:.1f} s ({} train / {} val tokens, vocabulary {})", dir,
               seconds_since(t_start), ds.train_tokens, ds.val_tokens, ds.vocab_size);
  return ds;
}

}  // namespace

PreparedDataset prepare_dataset(const DataConfig& data) {
  try {
    return prepare_or_reuse(data);
  } catch (const fs::filesystem_error& e) {
    // Its message names the operation and the paths; give it the type the CLI maps to exit 1.
    throw RuntimeFailure(std::string("prepare: ") + e.what());
  }
}

PreparedDataset load_prepared_dataset(const std::string& dir) {
  const std::string meta_path = dir + "/" + kMeta;
  std::error_code ec;
  if (!fs::is_regular_file(meta_path, ec)) {
    throw RuntimeFailure(meta_path +
                         ": missing — not a prepared dataset (run `ssmax-gpt prepare CONFIG`)");
  }
  json meta;
  try {
    meta = json::parse(read_file(meta_path));
  } catch (const json::exception& e) {
    throw RuntimeFailure(meta_path + ": unreadable (" + e.what() + "); " + kRebuild);
  }
  PreparedDataset ds;
  ds.dir = dir;
  try {
    const auto& files = meta.at("files");
    ds.tokenizer_model = dir + "/" + files.at("tokenizer_model").get<std::string>();
    ds.train_shard = dir + "/" + files.at("train_shard").get<std::string>();
    ds.val_shard = dir + "/" + files.at("val_shard").get<std::string>();
    ds.vocab_size = meta.at("vocab_size").get<int>();
    ds.fingerprint = meta.at("fingerprint").get<std::string>();
    ds.train_tokens = meta.at("train_tokens").get<uint64_t>();
    ds.val_tokens = meta.at("val_tokens").get<uint64_t>();
    ds.unigram_entropy_nats = meta.at("unigram_entropy_nats").get<double>();
  } catch (const json::exception& e) {
    throw RuntimeFailure(meta_path + ": missing or invalid field (" + e.what() + "); " + kRebuild);
  }
  for (const auto* path : {&ds.tokenizer_model, &ds.train_shard, &ds.val_shard}) {
    if (!fs::is_regular_file(*path, ec)) {
      throw RuntimeFailure(*path + ": missing from the prepared dataset (" + kRebuild + ")");
    }
  }
  // The shards must have been encoded with exactly this tokenizer, or every id means another piece.
  const int tok_vocab = Tokenizer::load(ds.tokenizer_model).vocab_size();
  for (const auto* path : {&ds.train_shard, &ds.val_shard}) {
    const TokenShard shard = TokenShard::open(*path);
    if (static_cast<int>(shard.vocab_size()) != tok_vocab || ds.vocab_size != tok_vocab) {
      throw RuntimeFailure("tokenizer/shard vocabulary mismatch: " + ds.tokenizer_model + " has " +
                           std::to_string(tok_vocab) + " pieces but " + *path +
                           " was encoded with " + std::to_string(shard.vocab_size()) +
                           " (meta.json says " + std::to_string(ds.vocab_size) + "); " + kRebuild);
    }
    const uint64_t expected = path == &ds.train_shard ? ds.train_tokens : ds.val_tokens;
    if (shard.size() != expected) {
      throw RuntimeFailure(*path + ": holds " + std::to_string(shard.size()) +
                           " tokens but meta.json says " + std::to_string(expected) + "; " +
                           kRebuild);
    }
  }
  return ds;
}

}  // namespace ssmax
