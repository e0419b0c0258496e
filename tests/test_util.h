#pragma once
// Shared helpers for tests: scratch directories and a tiny trainable config on generated text.
#include <algorithm>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"

namespace ssmax {

// The repository's configs/: $SSMAX_SOURCE_DIR overrides the source tree the tests were built from.
inline std::filesystem::path source_configs_dir() {
  const char* env = std::getenv("SSMAX_SOURCE_DIR");
  return std::filesystem::path(env && *env ? env : SSMAX_SOURCE_DIR) / "configs";
}

// A fresh, empty directory for one test: $SSMAX_TEST_TMP (or /tmp)/ssmax-tests/NAME.
inline std::string test_dir(const std::string& name) {
  const char* root = std::getenv("SSMAX_TEST_TMP");
  std::filesystem::path dir = std::filesystem::path(root ? root : "/tmp") / "ssmax-tests" / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

// The message of what fn() throws, or "(no exception)".
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

// The lines of a text, sorted: what a dataset holds when the order of its pieces is not the point.
inline std::vector<std::string> sorted_lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  std::sort(out.begin(), out.end());
  return out;
}

// A run's metrics.jsonl records without the wall-clock fields, which legitimately differ between runs.
inline std::vector<nlohmann::json> comparable_metrics(const std::string& run_dir) {
  std::vector<nlohmann::json> out;
  std::ifstream in(run_dir + "/metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    nlohmann::json record = nlohmann::json::parse(line);
    for (const char* key : {"tokens_per_s", "ms_per_step", "elapsed_s", "mfu"}) record.erase(key);
    out.push_back(record);
  }
  return out;
}

// The piece-cutting rule of data/corpus_split.h written the plain way (the whole document in memory, cut from the
// front): what the streaming cutter must reproduce.
inline std::vector<std::string> cut_document(const std::string& doc, size_t piece_bytes,
                                             size_t piece_limit = 128 * 1024) {
  piece_limit = std::max(piece_limit, 2 * piece_bytes);
  std::vector<std::string> pieces;
  for (size_t start = 0; start < doc.size();) {
    size_t end = doc.size();
    if (doc.size() - start > piece_bytes) {
      const size_t nl = doc.find('\n', start + piece_bytes - 1);
      if (nl != std::string::npos) end = nl + 1;
    }
    if (end - start > piece_limit) {  // a long line: before a space, else at the start of a character
      const size_t space = doc.find(' ', start + piece_bytes);
      end = start + piece_limit;
      if (space < end) {
        end = space;
      } else {
        size_t c = end;
        while (c > start + piece_bytes && (static_cast<unsigned char>(doc[c]) & 0xC0) == 0x80) --c;
        if (c > start + piece_bytes) end = c;
      }
    }
    pieces.push_back(doc.substr(start, end - start));
    start = end;
  }
  return pieces;
}

// Deterministic, learnable text: short sentences from a small grammar (~40 KB).
inline std::string write_tiny_corpus(const std::string& dir) {
  const char* subjects[] = {"the king", "a shepherd", "the people", "my brother", "the prophet", "a stranger"};
  const char* verbs[] = {"went up to", "spake unto", "looked upon", "came unto", "departed from"};
  const char* objects[] = {"the city", "the mountain", "the temple", "the river", "the house of the lord"};
  std::string path = dir + "/corpus.txt";
  std::ofstream out(path);
  unsigned state = 12345;
  for (int line = 0; line < 900; ++line) {
    state = state * 1103515245u + 12345u;
    out << subjects[(state >> 8) % 6] << " " << verbs[(state >> 12) % 5] << " " << objects[(state >> 16) % 5]
        << ", and it was day " << (line % 7 + 1) << ".\n";
  }
  return path;
}

inline Config tiny_training_config(const std::string& dir, const std::string& normalizer) {
  Config c;
  c.name = "tiny";
  c.threads = 1;
  c.device = "cpu";
  // Tests compare separate runs bit for bit: one library, not the machine cache's choice, which the parallel suite
  // may time again under load between two runs (train/cpu_blas.h; the CpuBlas tests cover "auto").
  c.cpu_blas = "aten";
  c.data.sources = {write_tiny_corpus(dir)};
  c.data.dataset_dir = dir + "/cache";
  c.data.tokenizer.vocab_size = 300;
  c.data.val_fraction = 0.1;
  c.model.n_layer = 1;
  c.model.n_head = 2;
  c.model.n_embd = 32;
  c.model.block_size = 32;
  c.model.position = "rope";
  c.model.attention.normalizer = *normalizer_from_name(normalizer);
  c.optim.lr = 3e-3;
  c.optim.warmup_steps = 2;
  c.train.batch_size = 4;
  c.train.max_steps = 6;
  c.train.log_every = 2;
  c.train.eval_every = 3;
  c.train.eval_batches = 2;
  c.train.checkpoint_every = 3;
  return c;
}

}  // namespace ssmax
