#pragma once
// `finetune --task needle|repeat`: retrieval finetuning of a trained model in a run directory of its own (the
// objective in finetune.cpp, the batches in finetune_batches.h). Torch-free, for the command-line layer.
#include <cstdint>
#include <string>
#include <vector>

namespace ssmax {

struct FinetuneArgs {
  std::string checkpoint;
  std::string task = "needle";
  std::vector<int64_t> lengths{256};   // prompt lengths, taken in turn step by step
  double lm_weight = 0;                // weight of the prompt's language-model loss next to the answer loss
  std::vector<std::string> overrides;  // --set KEY=VALUE on top of the source config and finetune defaults
  int64_t stop_at = 0;                 // > 0: stop after this step with a checkpoint
};
// The arguments' one check (run_finetune's first step; `study` calls it before its first task): UsageError naming the
// option and the value.
void check_arguments(const FinetuneArgs& args);
// Trains into its own run directory (default <source run>-ft-needle); running it again resumes.
int run_finetune(const FinetuneArgs& args);

}  // namespace ssmax
