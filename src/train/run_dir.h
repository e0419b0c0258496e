#pragma once
// A run directory: config.json (resolved), train.log, metrics.jsonl, checkpoints/.
#include <string>

#include "config/config.h"

namespace ssmax {

enum class RunDirState { Fresh, SameRunUnfinished, SameRunComplete };

// Creates out_dir (or checks it). Refuses, with UsageError, a directory that is not writable or that
// already holds a run with a different config (listing the differing keys). Writes config.json.
RunDirState open_run_dir(const Config& config);

// Settings table, system and library facts: the head of every train.log. `ranks` describes each process of a
// distributed run ("cpu on host, 1 thread"); it is empty for one process.
void log_run_header(const Config& config, int64_t parameters, int64_t vocab_size, const std::string& device,
                    const std::string& dataset_dir, double unigram_entropy, const std::vector<std::string>& ranks = {});

}  // namespace ssmax
