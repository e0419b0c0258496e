#pragma once
// A study file (studies/*.json): the paper's protocol as data — a base training config, the variants, the seeds, the
// finetune recipe and the evaluations — read, validated and expanded into the runs it implies. Torch-free.
//
//   {"name": "kjv-tiny", "config": "configs/kjv-tiny-softmax.json", "out_dir": "runs/study-kjv-tiny",
//    "set": {"threads": 1},                                    // on every run's config, like --set
//    "seeds": [1, 2, 3],
//    "variants": [{"name": "softmax", "set": {"model.attention.normalizer": "softmax"}},
//                 {"name": "ssmax_fixed_s", "set": {"model.attention.normalizer": "ssmax",
//                                                   "model.attention.learn_s": false}},
//                 {"name": "switched", "set": {"model.attention.normalizer": "softmax"},
//                  "switch": {"at_step": 100, "set": {"model.attention.normalizer": "ssmax"}}}],
//    "baseline": "softmax",
//    "finetune": [{"task": "repeat", "steps": 300, "lengths": [256], "lm_weight": 1, "set": {...}}, ...],
//    "long_context": {"lengths": [256, 512], "rope_theta_scales": [1, 50], "windows": 8},
//    "needle": {"lengths": [256, 512], "depths": [0, 0.5, 1], "trials": 5},
//    "attention": {"lengths": [256, 2048], "depth": 0.5, "trials": 5},
//    "recall": {"lengths": [32, 64, 128], "sequences": 256},          // models trained with data.task = "mqar"
//    "scalings": [{"name": "logn", "variants": ["softmax"], "normalizer": "logn"}],  // at evaluation only
//    "alpha": 0.05}
//
// Paths (config, out_dir, and data.* inside the config) are relative to the working directory, as in configs.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/eval_commands.h"  // NormalizerSwap

namespace ssmax {

// A change of normalizer part-way through training (paper variants (e) and (f)): train to `at_step` as configured,
// then continue with `overrides` (which may raise train.max_steps: at_step = the configured max_steps and a larger
// train.max_steps here is "switched after pretraining", (e)).
struct NormalizerSwitch {
  int64_t at_step = 0;
  std::vector<std::string> overrides;  // KEY=VALUE
};

struct StudyVariant {
  std::string name;
  std::vector<std::string> overrides;  // KEY=VALUE, after the study's own
  std::optional<NormalizerSwitch> normalizer_switch;
};

struct FinetuneStage {
  std::string task;  // repeat | needle
  int64_t steps = 0;
  std::vector<int64_t> lengths{256};
  double lm_weight = 0;
  std::vector<std::string> overrides;  // KEY=VALUE on the finetune's config
};

struct LongContextSpec {
  std::vector<int64_t> lengths;
  std::vector<double> rope_theta_scales{1};
  int windows = 8;
  bool finetuned = false;  // "models": "pretrained" (default, the paper's Figure 5) or "finetuned"
};

struct NeedleSpec {
  std::vector<int64_t> lengths;
  std::vector<double> depths{0, 0.25, 0.5, 0.75, 1};
  int trials = 5;
  int max_new_tokens = 10;
  uint64_t seed = 1;
};

struct AttentionSpec {
  std::vector<int64_t> lengths;
  double depth = 0.5;
  int trials = 5;
};

// A scaling applied at evaluation only (the paper's variant (e) generalised: Qwen's logn, Llama 4's temperature, SSMax
// swapped into a softmax model), on the models of some variants: the baselines a normalizer trained in must beat.
struct EvalScaling {
  std::string name;                   // the report's row: "<variant>+<name>"
  std::vector<std::string> variants;  // whose models it is applied to (default: the baseline)
  NormalizerSwap swap;
};

// The recall task's evaluation (models trained with data.task = "mqar").
struct RecallSpec {
  std::vector<int64_t> lengths;  // tokens; empty: 1, 2, 4, 8, 16 × block_size (those the keys allow)
  int sequences = 256;
  uint64_t seed = 1;
};

struct StudySpec {
  std::string path;  // the study file
  std::string name, config_path, out_dir;
  std::vector<std::string> overrides;  // the study's "set", then the command line's --set
  std::vector<uint64_t> seeds;
  std::vector<StudyVariant> variants;
  std::string baseline;  // a variant name
  std::vector<FinetuneStage> finetune;
  std::optional<LongContextSpec> long_context;
  std::optional<NeedleSpec> needle;
  std::optional<AttentionSpec> attention;
  std::optional<RecallSpec> recall;
  // The long-context loss and recall run on every model as trained, then once per scaling that applies to its variant.
  std::vector<EvalScaling> scalings;
  double alpha = 0.05;      // family-wise significance level of the report's tests
  nlohmann::json document;  // the file as read, for the report
};

// Reads and checks a study file; `cli_overrides` (--set) apply to every run after the file's "set". Throws
// UsageError naming the file, the key and what is allowed. Every run's config is validated here too, so a typo
// fails before anything trains.
StudySpec load_study(const std::string& path, const std::vector<std::string>& cli_overrides = {});

// One trained model of the study: a variant at a seed.
struct StudyRun {
  size_t variant = 0;  // index into StudySpec::variants
  uint64_t seed = 0;
  std::string name;     // "<variant>-seed<k>"
  std::string run_dir;  // <out_dir>/runs/<name>
  // Overrides of the base config for this run (study, variant, seed, out_dir, name).
  std::vector<std::string> overrides;
  // The finetune stages' run directories, in order: <run_dir>-ft-<task> (a second stage of the same task gets
  // a number: -ft-needle2).
  std::vector<std::string> finetune_dirs;
  // The model the needle and attention probes use: the last finetune stage's, else the pretrained one.
  const std::string& probe_dir() const { return finetune_dirs.empty() ? run_dir : finetune_dirs.back(); }
};

// Seed-major: every variant at the first seed, then at the next, so a study cut short holds whole seeds.
std::vector<StudyRun> expand_runs(const StudySpec& spec);

}  // namespace ssmax
