#pragma once
// `prepare`: collect source text, train (or load) the tokenizer, encode, split, write shards.
// Cached: a dataset lives in <dataset_dir>/<key>/ where key hashes the sources' contents and the
// tokenizer settings; re-running with unchanged inputs does no work, changed inputs build anew.
#include <cstdint>
#include <string>

#include "config/config.h"

namespace ssmax {

struct PreparedDataset {
  std::string dir;              // <dataset_dir>/<key>
  std::string tokenizer_model;  // path of the sentencepiece .model used
  std::string train_shard;
  std::string val_shard;
  int vocab_size = 0;
  std::string fingerprint;      // hex hash of tokenizer model + shard contents; checkpoints compare it
  uint64_t train_tokens = 0;
  uint64_t val_tokens = 0;
  double unigram_entropy_nats = 0;  // of the train split: the loss a model with no context reaches
  bool reused = false;          // true when the cache already held it
};

// Builds (or finds) the dataset. Throws UsageError for a missing/empty source or bad settings and
// RuntimeFailure for I/O errors. Shows progress on long steps through spdlog.
PreparedDataset prepare_dataset(const DataConfig& data);

// Opens an already prepared dataset directory (reads its meta.json and checks the files exist).
PreparedDataset load_prepared_dataset(const std::string& dir);

}  // namespace ssmax
