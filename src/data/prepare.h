#pragma once
// `prepare`: stream the sources, train (or load) the tokenizer, encode in parallel, split, write shards — in memory
// bounded by settings, not by the corpus. Cached in <dataset_dir>/<key>/ (see data/dataset_cache.h): re-running
// with unchanged inputs does no work, changed inputs build anew.
#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"

namespace ssmax {

struct PreparedDataset {
  std::string dir;                                    // <dataset_dir>/<key>
  std::string tokenizer_model;                        // path of the sentencepiece .model used
  std::vector<std::string> train_shards, val_shards;  // paths, in stream order
  int vocab_size = 0;
  std::string fingerprint;  // hex hash of tokenizer model + shard contents; checkpoints compare it
  uint64_t train_tokens = 0;
  uint64_t val_tokens = 0;
  double unigram_entropy_nats = 0;  // of the train split: the loss a model with no context reaches
  // Format 4: each split's document index (data/document_index.h); empty for older datasets, whose boundaries are
  // unknown. The id that ends every document in the streams, or -1 (none, or an older dataset).
  std::string train_documents, val_documents;
  uint64_t train_document_count = 0, val_document_count = 0;  // from the indexes, as load_prepared_dataset checked
  int document_end_token = -1;
  bool reused = false;  // true when the cache already held it
};

// Builds (or finds) the dataset, encoding on `threads` worker threads (0: one per core). Throws UsageError for a
// missing/empty source or bad settings and RuntimeFailure for I/O errors. Logs progress (MB/s, ETA) on long steps.
PreparedDataset prepare_dataset(const DataConfig& data, int threads = 0);

// data.prepared (when set), checked before anything is read or written: a directory, and with data.tokenizer.model
// given, one encoded with that very tokenizer (the same contents; the same size is not enough). UsageError naming both
// files.
void check_prepared(const DataConfig& data);

// Opens an already prepared dataset directory (reads its meta.json, checks the files and their vocabulary).
// Reads every format this build wrote (1–4); refuses newer ones, naming the command that rebuilds.
PreparedDataset load_prepared_dataset(const std::string& dir);

}  // namespace ssmax
