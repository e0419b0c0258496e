#pragma once
// Entry points of the evaluation subcommands, torch-free so the command-line layer stays cheap to
// compile. Each returns the exit code; errors are thrown as UsageError / RuntimeFailure.
#include <cstdint>
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

// Each command's arguments are checked once, here (eval_arguments.cpp), before any work: ranges, lists without
// repeats, output directories that are not files, the runtime options. The commands call these first, so the
// command line and `study` (which builds the arguments itself) meet the same checks. UsageError (exit 2) names the
// option and the value. What needs the checkpoint (lengths a learned-position model can take) is checked when it is
// opened, still before the first model is evaluated.
void check_arguments(const EvalRuntimeArgs& runtime);

// The attention normalizer an evaluation applies in place of the trained one (unset: as trained): the paper's
// variant (e), SSMax swapped into a softmax-trained model, and the scalings production models apply at inference
// only (logn: Qwen-1; llama4: Llama 4's temperature) — the baselines a normalizer trained in must beat. Allowed
// swaps keep every trained parameter (config/normalizer_kind.h). Unset parameters: s = 1/ln(block_size) (so
// s·ln n = 1 at the training length), b = 0, logn_length and floor_scale = the training length, attn_scale = 0.1,
// scaled_layers = all.
struct NormalizerSwap {
  std::optional<Normalizer> normalizer;
  std::optional<double> s, b;                // ssmax, ssmax_bias
  std::optional<int64_t> logn_length;        // logn: L
  std::optional<double> attn_scale;          // llama4: a
  std::optional<int64_t> floor_scale;        // llama4: F
  std::optional<std::string> scaled_layers;  // logn, llama4: all | nope (the layers without RoPE)
};
void check_arguments(const NormalizerSwap& swap);

struct GenerateArgs {
  std::string checkpoint, prompt;
  int max_new_tokens = 100;
  double temperature = 0.8;  // 0: greedy
  int top_k = 50;            // 0: no cut
  uint64_t seed = 1;
  std::string dump_path;  // non-empty: prompt ids, generated ids and the prompt's logits as JSON (--dump)
  NormalizerSwap swap;
  EvalRuntimeArgs runtime;
};
void check_arguments(const GenerateArgs& args);
// Streams the prompt and its continuation to stdout as the tokens arrive.
int run_generate(const GenerateArgs& args);

struct LengthEvalArgs {
  std::vector<std::string> checkpoints;
  std::string text_file;  // empty: the run's validation split
  std::vector<int64_t> lengths{256, 512, 1024, 2048};
  std::optional<double> rope_theta, rope_theta_scale;  // RoPE models: θ, or θ times this (unset: as trained)
  NormalizerSwap swap;
  int windows = 32;     // per length
  std::string out_dir;  // empty: <first run dir>/eval
  EvalRuntimeArgs runtime;
};
void check_arguments(const LengthEvalArgs& args);
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
  NormalizerSwap swap;
  EvalRuntimeArgs runtime;
};
void check_arguments(const NeedleArgs& args);
int run_needle(const NeedleArgs& args);

struct AttentionArgs {
  std::vector<std::string> checkpoints;  // several: grouped into variants like `compare`, one heatmap per variant
  int64_t length = 256;
  double depth = 0.5;
  int trials = 5;
  uint64_t seed = 1;
  std::string out_dir;  // empty: <run dir>/attention
  NormalizerSwap swap;
  EvalRuntimeArgs runtime;
};
void check_arguments(const AttentionArgs& args);
int run_attention(const AttentionArgs& args);
// `recall`: models trained on the recall task (data.task = "mqar", data/recall_task.h) answer its queries at several
// context lengths: accuracy, answer loss and the attention mass on the right pair, per layer and head.
struct RecallArgs {
  std::vector<std::string> checkpoints;
  std::vector<int64_t> lengths;  // tokens; empty: 1, 2, 4, 8, 16 × the first checkpoint's block_size (those that fit)
  int sequences = 256;           // per length
  int batch_size = 16;           // sequences per forward pass (fewer where the attention weights would be large)
  uint64_t seed = 1;             // the evaluation's sequences (another stream than training and validation)
  std::optional<double> rope_theta, rope_theta_scale;  // RoPE models: θ, or θ times this (unset: as trained)
  NormalizerSwap swap;
  std::string out_dir;  // empty: <first run dir>/recall
  EvalRuntimeArgs runtime;
};
void check_arguments(const RecallArgs& args);
// Table on stdout, recall.json and recall.{png,svg} in the output directory.
int run_recall(const RecallArgs& args);
inline constexpr const char* kRecallReport = "recall.json";

// The JSON reports `eval` and `needle` write in their output directory (a study reads them back).
inline constexpr const char* kLengthEvalReport = "eval.json";
inline constexpr const char* kNeedleReport = "needle.json";
// attention_L<length>_d<depth in %>: the stem of the JSON and heatmaps `attention` writes (a study reads them back).
std::string attention_file_stem(int64_t length, double depth);

}  // namespace ssmax
