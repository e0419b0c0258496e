#include "data/prepare.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "config/config.h"
#include "data/corpus_split.h"
#include "data/dataset_cache.h"
#include "data/parallel_encoder.h"
#include "data/sources.h"
#include "data/split_writer.h"
#include "data/token_stream.h"
#include "data/tokenizer.h"
#include "data/tokenizer_sample.h"
#include "util/errors.h"
#include "util/files.h"
#include "util/hash.h"
#include "util/progress.h"
#include "util/system_info.h"

namespace ssmax {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kModel = "tokenizer.model";
constexpr const char* kSample = "tokenizer-sample.txt";
constexpr size_t kChunkBytes = 256 * 1024;  // text per encoding job: ~50 ms of work, little memory in flight
constexpr const char* kTokenizerSettings =
    "normalization_rule_name=identity remove_extra_whitespaces=false add_dummy_prefix=false byte_fallback=true "
    "character_coverage=1.0 split_digits=true";

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

bool blank_line_documents(const DataConfig& data) { return data.text_documents == "blank_line"; }

UsageError no_text(size_t files) {
  return UsageError("data.sources: no text in the " + std::to_string(files) +
                    " source file(s) (compressed files and JSON Lines records are all empty)");
}

struct BuildContext {
  const DataConfig& data;
  const std::vector<SourceFile>& files;
  int threads;
  std::string dir;  // the build directory
  uint64_t source_bytes = 0;
  std::vector<std::string> hashes;  // of each source's bytes as stored
};

// Pass 1 (tokenizer training only): hash every source and keep a bounded sample of its lines.
LineSample sample_sources(BuildContext& ctx) {
  LineSample sample(static_cast<uint64_t>(ctx.data.tokenizer.sample_mb) * 1000000);
  ByteProgress progress("reading for the tokenizer sample", ctx.source_bytes);
  uint64_t raw = 0;
  for (size_t i = 0; i < ctx.files.size(); ++i) {
    Hasher64 hash;
    stream_source_text(
        ctx.files[i].path, ctx.data.text_field,
        [&](std::string_view text, bool) {
          sample.add(text);
          progress.update(raw);
        },
        hash, raw, blank_line_documents(ctx.data));
    ctx.hashes[i] = hash.hex();
  }
  sample.finish();
  return sample;
}

void train_on_sample(const BuildContext& ctx, const LineSample& sample) {
  const auto& tok = ctx.data.tokenizer;
  const std::string left_out =
      sample.bytes_left_out() == 0
          ? ""
          : fmt::format("; {:.2f} MB of lines longer than {:.2f} MB left out", sample.bytes_left_out() / 1e6,
                        sample.max_line_pieces() * kMaxSampleLine / 1e6);
  spdlog::info("tokenizer: training {} with vocabulary {} on {:.2f} MB ({} of {} lines{}{})", tok.model_type,
               tok.vocab_size, sample.bytes_kept() / 1e6, sample.lines_kept(), sample.lines_seen(),
               sample.whole() ? ": the whole corpus" : fmt::format(", data.tokenizer.sample_mb={}", tok.sample_mb),
               left_out);
  const auto t0 = Clock::now();
  const std::string sample_path = ctx.dir + "/" + kSample;
  sample.write(sample_path);
  try {
    train_tokenizer({sample_path, ctx.dir + "/tokenizer", tok.vocab_size, tok.model_type});
  } catch (const RuntimeFailure& e) {
    // A vocabulary too small for the corpus's characters or too big for its text is a setting to change (exit 2),
    // not a crash; sentencepiece's own sentence says which bound applies.
    const std::string what = e.what();
    const size_t at = what.find("Vocabulary size");
    if (at == std::string::npos) throw;
    throw UsageError("data.tokenizer.vocab_size: " + std::to_string(tok.vocab_size) +
                     " does not suit this corpus: " + what.substr(at, what.rfind(" (data.tokenizer") - at));
  }
  fs::remove(sample_path);  // the cache never keeps a copy of the corpus
  spdlog::info("tokenizer: trained in {:.1f} s", seconds_since(t0));
}

struct Encoded {
  uint64_t text_bytes = 0;
  size_t piece_bytes = 0;
  double seconds = 0;
};

// Pass 2: stream the sources again, cut pieces, encode them on the workers and write them as they come back.
Encoded encode_sources(BuildContext& ctx, const Tokenizer& tok, SplitWriter& split, bool hashes_known) {
  Encoded result;
  result.piece_bytes = piece_bytes_for(ctx.source_bytes, ctx.data.val_fraction);
  const auto t0 = Clock::now();
  // Whether each piece in flight ends its document, oldest first: chunks come back in the order they went out.
  std::deque<bool> ends;
  ParallelEncoder encoder(tok, ctx.threads, [&](std::vector<std::vector<uint32_t>>& encoded) {
    for (auto& tokens : encoded) {
      split.add(std::move(tokens), ends.front());
      ends.pop_front();
    }
  });
  std::vector<std::string> chunk;
  size_t chunk_bytes = 0;
  PieceCutter cutter(result.piece_bytes, [&](std::string_view piece, bool document_end) {
    chunk.emplace_back(piece);
    ends.push_back(document_end);
    chunk_bytes += piece.size();
    if (chunk_bytes >= kChunkBytes) {
      encoder.submit(std::move(chunk));
      chunk = {};
      chunk_bytes = 0;
    }
  });
  ByteProgress progress(fmt::format("encoding on {} threads", encoder.threads()), ctx.source_bytes);
  uint64_t raw = 0;
  for (size_t i = 0; i < ctx.files.size(); ++i) {
    Hasher64 hash;
    stream_source_text(
        ctx.files[i].path, ctx.data.text_field,
        [&](std::string_view text, bool document_end) {
          result.text_bytes += text.size();
          cutter.add(text, document_end);
          progress.update(raw);
        },
        hash, raw, blank_line_documents(ctx.data));
    if (!hashes_known) {
      ctx.hashes[i] = hash.hex();
    } else if (ctx.hashes[i] != hash.hex()) {
      throw RuntimeFailure(ctx.files[i].path + ": changed while the dataset was being prepared; run prepare again");
    }
  }
  if (!chunk.empty()) encoder.submit(std::move(chunk));
  encoder.finish();
  split.finish();
  result.seconds = seconds_since(t0);
  return result;
}

// Builds the dataset in ctx.dir and returns its content key; `existing` is set (and nothing more is built) when
// the first pass finds that key already complete in the cache.
std::string build_dataset(BuildContext& ctx, bool& existing) {
  const DataConfig& data = ctx.data;
  const auto t0 = Clock::now();
  spdlog::info("data: {} source file(s), {:.2f} MB as stored; building in {}", ctx.files.size(), ctx.source_bytes / 1e6,
               ctx.dir);
  const std::string model_path = ctx.dir + "/" + kModel;
  const bool train_tokenizer_here = data.tokenizer.model.empty();
  std::string key;
  if (train_tokenizer_here) {
    const LineSample sample = sample_sources(ctx);
    if (sample.lines_seen() == 0) throw no_text(ctx.files.size());
    key = content_key(data, ctx.files, ctx.hashes);
    existing = dataset_complete(fs::path(data.dataset_dir) / key);
    if (existing) return key;
    train_on_sample(ctx, sample);
  }
  // A given model is loaded where the user keeps it, so that a damaged one is named there, not in the build directory.
  const Tokenizer tok = Tokenizer::load(train_tokenizer_here ? model_path : data.tokenizer.model);
  if (!train_tokenizer_here) fs::copy_file(data.tokenizer.model, model_path, fs::copy_options::overwrite_existing);
  const int vocab = tok.vocab_size();
  if (vocab != data.tokenizer.vocab_size) {
    spdlog::warn("tokenizer {} has {} pieces, not data.tokenizer.vocab_size={}; the shards use {}", tok.model_path(),
                 vocab, data.tokenizer.vocab_size, vocab);
  }

  const int end_token = tok.special_tokens().eos.id;
  if (end_token < 0)
    spdlog::warn("tokenizer {} has no end-of-sequence token: documents are marked only in the boundary indexes",
                 tok.model_path());
  SplitWriter split(ctx.dir, static_cast<uint32_t>(vocab), data, end_token);
  const Encoded encoded = encode_sources(ctx, tok, split, train_tokenizer_here);
  if (encoded.text_bytes == 0) throw no_text(ctx.files.size());
  if (split.pieces() < 2) {
    throw UsageError("data.sources: the corpus is a single line (" + std::to_string(encoded.text_bytes) +
                     " bytes); it needs at least 2 lines to make a train and a val split");
  }
  if (key.empty()) key = content_key(data, ctx.files, ctx.hashes);
  const uint64_t tokens = split.train_tokens() + split.val_tokens();
  spdlog::info(
      "encoding: {} tokens in {:.1f} s ({:.1f} MB/s of text, {:.2f} bytes/token); split {} train / {} val pieces (cut "
      "after ~{} KiB or where a document ends); {} train / {} val documents; {} train + {} val shard(s) of up to {} "
      "tokens",
      tokens, encoded.seconds, encoded.text_bytes / 1e6 / std::max(encoded.seconds, 1e-9),
      double(encoded.text_bytes) / std::max<uint64_t>(1, tokens), split.pieces() - split.val_pieces(),
      split.val_pieces(), std::max<size_t>(1, encoded.piece_bytes / 1024), split.train_documents(),
      split.val_documents(), split.train_names.size(), split.val_names.size(), data.shard_tokens);

  json sources = json::array();
  for (size_t i = 0; i < ctx.files.size(); ++i)
    sources.push_back({{"path", ctx.files[i].path}, {"bytes", ctx.files[i].bytes}, {"hash", ctx.hashes[i]}});
  const double seconds = seconds_since(t0);
  // clang-format off
  const json meta = {
      {"format", kDatasetFormat}, {"key", key}, {"created", utc_now()}, {"vocab_size", vocab},
      {"train_tokens", split.train_tokens()}, {"val_tokens", split.val_tokens()},
      {"token_bytes", vocab <= 65536 ? 2 : 4}, {"shard_tokens", data.shard_tokens},
      {"unigram_entropy_nats", split.unigram_entropy()},
      {"fingerprint", dataset_fingerprint(ctx.dir, kModel, split.train_names, split.val_names,
                                          {kTrainDocuments, kValDocuments})},
      {"document_end_token", end_token}, {"train_documents", split.train_documents()},
      {"val_documents", split.val_documents()}, {"text_documents", data.text_documents},
      {"corpus_bytes", encoded.text_bytes}, {"source_bytes", ctx.source_bytes}, {"val_fraction", data.val_fraction},
      {"split", {{"piece_bytes", encoded.piece_bytes}, {"train_pieces", split.pieces() - split.val_pieces()},
                 {"val_pieces", split.val_pieces()}}},
      {"sources", sources},
      {"tokenizer", {{"source", train_tokenizer_here ? "trained" : data.tokenizer.model},
                     {"model_type", data.tokenizer.model_type}, {"requested_vocab_size", data.tokenizer.vocab_size},
                     {"sample_mb", data.tokenizer.sample_mb}, {"settings", kTokenizerSettings}}},
      {"build", {{"seconds", seconds}, {"encode_threads", ctx.threads}, {"peak_rss_mb", peak_rss_mb()}}},
      {"files", {{"tokenizer_model", kModel}, {"train_shards", split.train_names},
                 {"val_shards", split.val_names}, {"train_documents", kTrainDocuments},
                 {"val_documents", kValDocuments}}}};
  // clang-format on
  // Last, so its presence means everything above is on disk.
  write_file_atomic(ctx.dir + "/meta.json", meta.dump(2) + "\n");
  return key;
}

PreparedDataset prepare_or_reuse(const DataConfig& data, int threads) {
  check_data_config(data);  // a DataConfig built in code gets the schema's checks, as a config file does
  if (!data.tokenizer.model.empty() && !fs::is_regular_file(data.tokenizer.model)) {
    throw UsageError("data.tokenizer.model: '" + data.tokenizer.model +
                     "' does not exist (give a sentencepiece .model file, or leave it empty to train one)");
  }
  const auto files = list_sources(data);
  if (std::all_of(files.begin(), files.end(), [](const SourceFile& f) { return f.bytes == 0; })) {
    std::string names;
    for (const auto& s : data.sources) names += (names.empty() ? "'" : ", '") + s + "'";
    throw UsageError("data.sources: no text in " + names + " (every file is empty)");
  }
  const std::string quick = quick_key(data, files);
  if (const std::string dir = find_by_quick_key(data.dataset_dir, quick); !dir.empty()) {
    PreparedDataset ds = load_prepared_dataset(dir);
    ds.reused = true;
    spdlog::info("dataset cached at {} ({} train / {} val tokens; sources unchanged in size and modification time)",
                 dir, ds.train_tokens, ds.val_tokens);
    return ds;
  }

  std::error_code ec;
  fs::create_directories(data.dataset_dir, ec);
  if (ec) throw RuntimeFailure(data.dataset_dir + ": cannot create dataset directory: " + ec.message());
  remove_interrupted_builds(data.dataset_dir);
  // Built aside and renamed into place: an interrupted build never leaves a directory that looks complete.
  BuildContext ctx{data, files, threads > 0 ? threads : hardware_threads()};
  ctx.dir = (fs::path(data.dataset_dir) / (".tmp-" + quick + "-" + std::to_string(::getpid()))).string();
  ctx.hashes.resize(files.size());
  for (const auto& f : files) ctx.source_bytes += f.bytes;
  fs::remove_all(ctx.dir, ec);
  fs::create_directories(ctx.dir, ec);
  if (ec) throw RuntimeFailure(ctx.dir + ": cannot create: " + ec.message());
  const auto t_start = Clock::now();
  bool existing = false;
  std::string key;
  try {
    key = build_dataset(ctx, existing);
  } catch (...) {
    fs::remove_all(ctx.dir, ec);
    throw;
  }
  const std::string dir = (fs::path(data.dataset_dir) / key).string();
  // Another process may have finished the same dataset meanwhile: theirs is identical, keep it.
  if (dataset_complete(dir)) {
    fs::remove_all(ctx.dir, ec);
  } else {
    if (fs::exists(dir))
      spdlog::warn("prepare: {} was incomplete or damaged (no readable meta.json): replaced by this build", dir);
    fs::remove_all(dir, ec);
    if (::rename(ctx.dir.c_str(), dir.c_str()) != 0) {
      const std::string why = errno_text();
      fs::remove_all(ctx.dir, ec);
      if (!dataset_complete(dir)) throw RuntimeFailure("cannot rename " + ctx.dir + " to " + dir + ": " + why);
    }
    sync_directory(data.dataset_dir);
  }
  // Recorded only if no source changed while it was read: the quick key must describe what was hashed.
  const auto after = list_sources(data);
  const bool unchanged = std::equal(files.begin(), files.end(), after.begin(), after.end(), [](auto& a, auto& b) {
    return a.path == b.path && a.bytes == b.bytes && a.mtime_ns == b.mtime_ns;
  });
  if (unchanged) record_quick_key(data.dataset_dir, quick, key);
  PreparedDataset ds = load_prepared_dataset(dir);
  ds.reused = existing;
  if (existing) {
    spdlog::info("dataset cached at {}: the sources' contents are unchanged ({} train / {} val tokens)", dir,
                 ds.train_tokens, ds.val_tokens);
  } else {
    spdlog::info("dataset built at {} in {:.1f} s ({} train / {} val tokens, vocabulary {}, peak memory {:.0f} MB)",
                 dir, seconds_since(t_start), ds.train_tokens, ds.val_tokens, ds.vocab_size, peak_rss_mb());
  }
  return ds;
}

}  // namespace

PreparedDataset prepare_dataset(const DataConfig& data, int threads) {
  try {
    if (!data.prepared.empty()) {
      check_prepared(data);
      PreparedDataset dataset = load_prepared_dataset(data.prepared);
      dataset.reused = true;
      spdlog::info("dataset {} (data.prepared): vocab {}, {} train / {} val tokens", dataset.dir, dataset.vocab_size,
                   dataset.train_tokens, dataset.val_tokens);
      return dataset;
    }
    return prepare_or_reuse(data, threads);
  } catch (const fs::filesystem_error& e) {
    // Its message names the operation and the paths; give it the type the CLI maps to exit 1.
    throw RuntimeFailure(std::string("prepare: ") + e.what());
  }
}

}  // namespace ssmax
