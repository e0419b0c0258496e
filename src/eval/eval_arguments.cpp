// The evaluation commands' one check of their arguments (eval_commands.h). Torch-free.
#include <filesystem>

#include "config/schema.h"
#include "eval/eval_commands.h"
#include "util/arg_checks.h"

namespace ssmax {
namespace fs = std::filesystem;

namespace {

constexpr double kInfinity = std::numeric_limits<double>::infinity();

void check_checkpoints(const std::string& command, const std::vector<std::string>& checkpoints) {
  if (checkpoints.empty()) throw UsageError(command + ": name at least one checkpoint or run directory");
  check_distinct("checkpoints", checkpoints, true);
}

void check_lengths(const std::vector<int64_t>& lengths) {
  if (lengths.empty()) throw UsageError("--lengths: give at least one length");
  for (int64_t length : lengths)
    if (length < 1) throw UsageError("--lengths " + std::to_string(length) + ": must be a positive length");
  check_no_repeats("--lengths", lengths);
}

void check_rope_override(const std::optional<double>& theta, const std::optional<double>& scale) {
  if (theta) check_number("--rope-theta", *theta, 0, kInfinity, true);
  if (scale) check_number("--rope-theta-scale", *scale, 0, kInfinity, true);
  if (theta && scale) throw UsageError("--rope-theta and --rope-theta-scale exclude each other; give one");
}

void check_count(const std::string& option, int64_t value, int64_t min) {
  if (value < min) throw UsageError(option + " " + std::to_string(value) + ": must be >= " + std::to_string(min));
}

}  // namespace

void check_arguments(const EvalRuntimeArgs& runtime) {
  if (!is_device_name(runtime.device))
    throw UsageError("--device " + runtime.device + ": expected auto, cpu, cuda or cuda:N");
  if (runtime.threads < 0 || runtime.threads > 1024)
    throw UsageError("--threads " + std::to_string(runtime.threads) + ": must be in [0, 1024] (0 = all cores)");
  if (runtime.precision != "fp32" && runtime.precision != "bf16")
    throw UsageError("--precision " + runtime.precision + ": expected fp32 or bf16");
}

void check_arguments(const NormalizerSwap& swap) {
  const std::optional<Normalizer> n = swap.normalizer;
  auto needs = [&](const char* option, bool applies, const char* which) {
    if (!applies) throw UsageError(std::string(option) + " applies only together with --normalizer " + which);
  };
  if (swap.s) {
    needs("--s", n && has_learned_scale(*n), "ssmax|ssmax_bias");
    check_number("--s", *swap.s, -100, 100);
  }
  if (swap.b) {
    needs("--b", n == Normalizer::SSMaxBias, "ssmax_bias (the other normalizers have no b)");
    check_number("--b", *swap.b, -100, 100);
  }
  if (swap.logn_length) {
    needs("--logn-length", n == Normalizer::Logn, "logn");
    check_count("--logn-length", *swap.logn_length, 2);
  }
  if (swap.attn_scale) {
    needs("--attn-scale", n == Normalizer::Llama4, "llama4");
    check_number("--attn-scale", *swap.attn_scale, 0, 100);
  }
  if (swap.floor_scale) {
    needs("--floor-scale", n == Normalizer::Llama4, "llama4");
    check_count("--floor-scale", *swap.floor_scale, 1);
  }
  if (swap.scaled_layers) {
    needs("--scaled-layers", n && is_parameter_free_scaling(*n), "logn|llama4");
    if (*swap.scaled_layers != "all" && *swap.scaled_layers != "nope")
      throw UsageError("--scaled-layers " + *swap.scaled_layers + ": expected all or nope (the layers without RoPE)");
  }
}

void check_arguments(const GenerateArgs& args) {
  check_arguments(args.runtime);
  check_arguments(args.swap);
  check_count("--max-new-tokens", args.max_new_tokens, 0);
  check_number("--temperature", args.temperature, 0);
  if (args.top_k < 0)
    throw UsageError("--top-k " + std::to_string(args.top_k) + ": must be >= 0 (0 = sample among all tokens)");
}

void check_arguments(const LengthEvalArgs& args) {
  check_arguments(args.runtime);
  check_checkpoints("eval", args.checkpoints);
  check_lengths(args.lengths);
  check_count("--batches", args.windows, 1);
  check_out_dir("--out", args.out_dir);
  check_rope_override(args.rope_theta, args.rope_theta_scale);
  check_arguments(args.swap);
  if (!args.text_file.empty() && !fs::is_regular_file(args.text_file))
    throw UsageError("--text " + args.text_file + ": no such file");
}

void check_arguments(const NeedleArgs& args) {
  check_arguments(args.runtime);
  check_arguments(args.swap);
  check_checkpoints("needle", args.checkpoints);
  check_lengths(args.lengths);
  if (args.depths.empty()) throw UsageError("--depths: give at least one depth");
  for (double depth : args.depths) check_number("--depths", depth, 0, 1);
  check_no_repeats("--depths", args.depths);
  check_count("--trials", args.trials, 1);
  if (args.max_new_tokens < 8)
    throw UsageError("--max-new-tokens " + std::to_string(args.max_new_tokens) + ": at least 8 (a space and 7 digits)");
  check_out_dir("--out", args.out_dir);
}

void check_arguments(const RecallArgs& args) {
  check_arguments(args.runtime);
  check_arguments(args.swap);
  check_checkpoints("recall", args.checkpoints);
  if (!args.lengths.empty()) check_lengths(args.lengths);
  check_count("--sequences", args.sequences, 1);
  check_count("--batch-size", args.batch_size, 1);
  check_out_dir("--out", args.out_dir);
  check_rope_override(args.rope_theta, args.rope_theta_scale);
}

void check_arguments(const AttentionArgs& args) {
  check_arguments(args.runtime);
  check_arguments(args.swap);
  check_checkpoints("attention", args.checkpoints);
  check_count("--length", args.length, 2);
  check_number("--depth", args.depth, 0, 1);
  check_count("--trials", args.trials, 1);
  check_out_dir("--out", args.out_dir);
}

}  // namespace ssmax
