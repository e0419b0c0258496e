#pragma once
// Entry points of the evaluation subcommands, torch-free so the command-line layer stays cheap to
// compile. Each returns the exit code; errors are thrown as UsageError / RuntimeFailure.
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "config/normalizer_kind.h"

namespace ssmax {

struct EvalRuntimeArgs {
  std::string device = "auto";     // auto | cpu | cuda | cuda:N
  int threads = 0;                 // 0: every core
  std::string precision = "fp32";  // fp32 | bf16: the forward passes under bf16 autocast, as train.precision
};

struct GenerateArgs {
  std::string checkpoint, prompt;
  int max_new_tokens = 100;
  double temperature = 0.8;  // 0: greedy
  int top_k = 50;            // 0: no cut
  uint64_t seed = 1;
  std::string dump_path;  // non-empty: prompt ids, generated ids and the prompt's logits as JSON (--dump)
  EvalRuntimeArgs runtime;
};
// Streams the prompt and its continuation to stdout as the tokens arrive.
int run_generate(const GenerateArgs& args);

struct LengthEvalArgs {
  std::vector<std::string> checkpoints;
  std::string text_file;  // empty: the run's validation split
  std::vector<int64_t> lengths{256, 512, 1024, 2048};
  double rope_theta = 0, rope_theta_scale = 0;
  std::optional<Normalizer> normalizer;                 // unset: as trained (see EvalLoadOptions)
  double s = std::numeric_limits<double>::quiet_NaN();  // NaN: 1/ln(block_size)
  double b = 0;
  int windows = 32;     // per length
  std::string out_dir;  // empty: <first run dir>/eval
  EvalRuntimeArgs runtime;
};
// Table on stdout, eval.json and eval_loss.{png,svg} in the output directory.
int run_length_eval(const LengthEvalArgs& args);

struct NeedleArgs {
  std::vector<std::string> checkpoints;
  std::vector<int64_t> lengths{256};
  std::vector<double> depths{0, 0.25, 0.5, 0.75, 1};
  int trials = 5;
  int max_new_tokens = 10;
  uint64_t seed = 1;
  bool show_prompts = false;  // print each cell's first prompt and answer to stderr
  std::string out_dir;        // empty: <run dir>/needle
  EvalRuntimeArgs runtime;
};
int run_needle(const NeedleArgs& args);

struct AttentionArgs {
  std::vector<std::string> checkpoints;  // several: grouped into variants like `compare`, one heatmap per variant
  int64_t length = 256;
  double depth = 0.5;
  int trials = 5;
  uint64_t seed = 1;
  std::string out_dir;  // empty: <run dir>/attention
  EvalRuntimeArgs runtime;
};
int run_attention(const AttentionArgs& args);
// attention_L<length>_d<depth in %>: the stem of the JSON and heatmaps `attention` writes (a study reads them back).
std::string attention_file_stem(int64_t length, double depth);

}  // namespace ssmax
