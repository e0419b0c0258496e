#include "study/study_tasks.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>

#include "config/config.h"
#include "eval/eval_commands.h"
#include "run/checkpoint_catalog.h"
#include "run/run_paths.h"
#include "study/study_comparisons.h"
#include "train/finetune.h"
#include "train/trainer.h"
#include "util/errors.h"
#include "util/files.h"
#include "util/interrupt.h"
#include "util/text.h"

namespace ssmax {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

using Kind = StudyTask::Kind;

int64_t last_step(const std::string& run_dir) {
  const auto checkpoints = list_checkpoints(run_dir);
  return checkpoints.empty() ? 0 : checkpoints.back().step;
}

Config run_config(const StudySpec& spec, const StudyRun& run, bool switched) {
  auto overrides = run.overrides;
  const auto& variant = spec.variants[run.variant];
  if (switched && variant.normalizer_switch)
    overrides.insert(overrides.end(), variant.normalizer_switch->overrides.begin(),
                     variant.normalizer_switch->overrides.end());
  return load_config(spec.config_path, overrides);
}

// The model an evaluation reads, and the settings that make its result: an evaluation is done when its marker
// (written after its output) equals this.
std::string evaluated_dir(const StudySpec& spec, const StudyRun& run, const StudyTask& task) {
  if (task.kind == Kind::LongContext) return spec.long_context->finetuned ? run.probe_dir() : run.run_dir;
  return run.probe_dir();
}

json scaling_json(const EvalScaling& scaling) {
  const NormalizerSwap& swap = scaling.swap;
  auto optional = [](const auto& value) { return value ? json(*value) : json(nullptr); };
  return {{"name", scaling.name},
          {"normalizer", normalizer_name(*swap.normalizer)},
          {"s", optional(swap.s)},
          {"b", optional(swap.b)},
          {"logn_length", optional(swap.logn_length)},
          {"attn_scale", optional(swap.attn_scale)},
          {"floor_scale", optional(swap.floor_scale)},
          {"scaled_layers", optional(swap.scaled_layers)}};
}

json task_settings(const StudySpec& spec, const std::vector<StudyRun>& runs, const StudyTask& task) {
  const StudyRun& run = runs[task.run];
  const std::string model = evaluated_dir(spec, run, task);
  const auto checkpoints = list_checkpoints(model);
  json settings = {{"model", model}, {"checkpoint", checkpoints.empty() ? "" : checkpoints.back().path}};
  switch (task.kind) {
    case Kind::LongContext:
      settings.update({{"evaluation", "long_context"},
                       {"lengths", spec.long_context->lengths},
                       {"rope_theta_scale", task.theta_scale},
                       {"windows", spec.long_context->windows}});
      if (task.scaling >= 0) settings["scaling"] = scaling_json(spec.scalings[task.scaling]);
      break;
    case Kind::Needle:
      settings.update({{"evaluation", "needle"},
                       {"lengths", spec.needle->lengths},
                       {"depths", spec.needle->depths},
                       {"trials", spec.needle->trials},
                       {"max_new_tokens", spec.needle->max_new_tokens},
                       {"seed", spec.needle->seed}});
      break;
    case Kind::Attention:
      settings.update({{"evaluation", "attention"},
                       {"length", task.length},
                       {"depth", spec.attention->depth},
                       {"trials", spec.attention->trials}});
      break;
    case Kind::Recall:
      settings.update({{"evaluation", "recall"},
                       {"lengths", spec.recall->lengths},
                       {"sequences", spec.recall->sequences},
                       {"seed", spec.recall->seed},
                       {"scaling", task.scaling < 0 ? json(nullptr) : scaling_json(spec.scalings[task.scaling])}});
      break;
    default:
      break;
  }
  return settings;
}

const char* kMarker = "study_task.json";

// What every evaluation command is given: the model, the output directory and the run's device and threads.
template <typename Args>
Args eval_args(const StudySpec& spec, const std::vector<StudyRun>& runs, const StudyTask& task) {
  const StudyRun& run = runs[task.run];
  const Config config = run_config(spec, run, false);
  Args args;
  args.checkpoints = {evaluated_dir(spec, run, task)};
  args.out_dir = task.out_dir;
  args.runtime = {config.device, config.threads, config.train.precision};  // evaluated as it trained
  return args;
}

// A run directory started by an earlier invocation must hold the run the study file describes now: resuming would
// otherwise continue a model of another shape or recipe under this study's name.
void check_same_run(const StudySpec& spec, const StudyRun& run, const Config& config) {
  const fs::path stored = RunPaths(run.run_dir).config();
  if (!fs::exists(stored)) return;
  const auto changeable = config_keys_changeable_on_resume();
  std::set<std::string> allowed(changeable.begin(), changeable.end());
  if (const auto& s = spec.variants[run.variant].normalizer_switch)
    for (const auto& assignment : s->overrides) allowed.insert(assignment.substr(0, assignment.find('=')));
  std::vector<std::string> differing;
  for (const auto& key : config_differences(json::parse(read_file(stored.string())), config_to_json(config)))
    if (!allowed.count(key)) differing.push_back(key);
  if (!differing.empty())
    throw UsageError(run.run_dir + " holds a run whose " + join(differing) + " differ from what " + spec.path +
                     " gives now; restore the study file, or move that run away to train it afresh");
}

bool train_run(const StudySpec& spec, const StudyRun& run) {
  const auto& variant = spec.variants[run.variant];
  const Config config = run_config(spec, run, false);
  const int64_t at = variant.normalizer_switch ? variant.normalizer_switch->at_step : config.train.max_steps;
  const auto max_steps = "train.max_steps=" + std::to_string(config.train.max_steps);
  int64_t step = last_step(run.run_dir);
  if (step > 0) check_same_run(spec, run, config);
  if (step < at) {  // as configured (the whole run, or up to the switch)
    TrainOptions options;
    options.stop_at = at < config.train.max_steps ? at : 0;
    const TrainSummary summary = step == 0 ? train(config, options) : resume(run.run_dir, {max_steps}, options);
    if (InterruptGuard::requested()) return false;
    if (!variant.normalizer_switch) return true;
    step = summary.steps;
  }
  if (!variant.normalizer_switch) return true;
  const Config switched = run_config(spec, run, true);
  if (step >= switched.train.max_steps) return true;
  spdlog::info("study: {} switches at step {}: {}", run.name, step, join(variant.normalizer_switch->overrides));
  resume(run.run_dir, variant.normalizer_switch->overrides);
  return !InterruptGuard::requested();
}

}  // namespace

void check_runs_on_disk(const StudySpec& spec, const std::vector<StudyRun>& runs) {
  for (const auto& run : runs) check_same_run(spec, run, run_config(spec, run, false));
}

std::string long_context_dir(const StudySpec& spec, double theta_scale, int scaling, const StudyRun& run) {
  const std::string name =
      "long_context-theta_x" + short_number(theta_scale) + (scaling < 0 ? "" : "+" + spec.scalings[scaling].name);
  return (fs::path(spec.out_dir) / "evals" / name / run.name).string();
}
std::string needle_dir(const StudySpec& spec, const StudyRun& run) {
  return (fs::path(spec.out_dir) / "evals" / "needle" / run.name).string();
}
std::string attention_dir(const StudySpec& spec, int64_t length, const StudyRun& run) {
  return (fs::path(spec.out_dir) / "evals" / ("attention-L" + std::to_string(length)) / run.name).string();
}
std::string recall_dir(const StudySpec& spec, int scaling, const StudyRun& run) {
  const std::string name = scaling < 0 ? "recall" : "recall+" + spec.scalings[scaling].name;
  return (fs::path(spec.out_dir) / "evals" / name / run.name).string();
}

std::vector<int> scalings_of(const StudySpec& spec, const StudyRun& run) {
  std::vector<int> out{-1};
  for (size_t s = 0; s < spec.scalings.size(); ++s) {
    const auto& applies = spec.scalings[s].variants;
    if (std::find(applies.begin(), applies.end(), spec.variants[run.variant].name) != applies.end())
      out.push_back(static_cast<int>(s));
  }
  return out;
}

std::vector<StudyTask> plan_tasks(const StudySpec& spec, const std::vector<StudyRun>& runs) {
  std::vector<StudyTask> tasks;
  for (size_t r = 0; r < runs.size(); ++r) {
    const StudyRun& run = runs[r];
    const Config config = run_config(spec, run, true);
    const double sequences = static_cast<double>(config.train.batch_size * config.train.grad_accum_steps);
    StudyTask task;
    task.run = r;
    task.kind = Kind::Train;
    task.label = "train " + run.name;
    task.out_dir = run.run_dir;
    task.cost = 3 * sequences * static_cast<double>(config.train.max_steps * config.model.block_size);
    tasks.push_back(task);
    for (size_t s = 0; s < spec.finetune.size(); ++s) {
      const FinetuneStage& stage = spec.finetune[s];
      task.kind = Kind::Finetune;
      task.stage = s;
      task.label = "finetune " + stage.task + " " + run.name;
      task.out_dir = run.finetune_dirs[s];
      const double mean_length =
          std::accumulate(stage.lengths.begin(), stage.lengths.end(), 0.0) / static_cast<double>(stage.lengths.size());
      task.cost = 3 * static_cast<double>(config.train.batch_size * stage.steps) * mean_length *
                  (stage.task == "repeat" ? 2 : 1);
      tasks.push_back(task);
    }
    if (spec.long_context) {
      const double tokens = spec.long_context->windows *
                            static_cast<double>(std::accumulate(spec.long_context->lengths.begin(),
                                                                spec.long_context->lengths.end(), int64_t{0}));
      for (double scale : spec.long_context->rope_theta_scales)
        for (int scaling : scalings_of(spec, run)) {
          task.kind = Kind::LongContext;
          task.theta_scale = scale;
          task.scaling = scaling;
          task.label = "long-context loss (RoPE θ×" + short_number(scale) +
                       (scaling < 0 ? "" : ", +" + spec.scalings[scaling].name) + ") " + run.name;
          task.out_dir = long_context_dir(spec, scale, scaling, run);
          task.cost = tokens;
          tasks.push_back(task);
        }
      task.scaling = -1;
    }
    if (spec.needle) {
      task.kind = Kind::Needle;
      task.label = "needle " + run.name;
      task.out_dir = needle_dir(spec, run);
      task.cost =
          static_cast<double>(spec.needle->trials * spec.needle->depths.size()) *
          static_cast<double>(std::accumulate(spec.needle->lengths.begin(), spec.needle->lengths.end(), int64_t{0}));
      tasks.push_back(task);
    }
    if (spec.attention)
      for (int64_t length : spec.attention->lengths) {
        task.kind = Kind::Attention;
        task.length = length;
        task.label = "attention at " + std::to_string(length) + " tokens " + run.name;
        task.out_dir = attention_dir(spec, length, run);
        task.cost = static_cast<double>(spec.attention->trials * length);
        tasks.push_back(task);
      }
    if (spec.recall) {
      // The default lengths go to 16 × block_size: 31 block lengths in all.
      int64_t tokens = 0;
      for (int64_t length : spec.recall->lengths) tokens += length;
      if (spec.recall->lengths.empty()) tokens = 31 * config.model.block_size;
      for (int scaling : scalings_of(spec, run)) {
        task.kind = Kind::Recall;
        task.scaling = scaling;
        task.label = "recall" + (scaling < 0 ? "" : " +" + spec.scalings[scaling].name) + " " + run.name;
        task.out_dir = recall_dir(spec, scaling, run);
        task.cost = static_cast<double>(spec.recall->sequences * tokens);
        tasks.push_back(task);
      }
    }
  }
  return tasks;
}

bool task_done(const StudySpec& spec, const std::vector<StudyRun>& runs, const StudyTask& task) {
  const StudyRun& run = runs[task.run];
  switch (task.kind) {
    case Kind::Train:
      return last_step(run.run_dir) >= run_config(spec, run, true).train.max_steps;
    case Kind::Finetune:
      return last_step(run.finetune_dirs[task.stage]) >= spec.finetune[task.stage].steps;
    default: {
      const fs::path marker = fs::path(task.out_dir) / kMarker;
      if (!fs::exists(marker)) return false;
      try {
        return json::parse(read_file(marker.string())) == task_settings(spec, runs, task);
      } catch (const std::exception&) {
        return false;  // unreadable: evaluate again
      }
    }
  }
}

double task_fraction(const StudySpec& spec, const std::vector<StudyRun>& runs, const StudyTask& task) {
  const StudyRun& run = runs[task.run];
  if (task.kind == Kind::Train)
    return static_cast<double>(last_step(run.run_dir)) /
           static_cast<double>(run_config(spec, run, true).train.max_steps);
  if (task.kind == Kind::Finetune)
    return static_cast<double>(last_step(run.finetune_dirs[task.stage])) /
           static_cast<double>(spec.finetune[task.stage].steps);
  return 0;
}

namespace {

// Each task's command arguments: built for running it, and for checking every task's before the first runs.
FinetuneArgs finetune_args(const StudySpec& spec, const std::vector<StudyRun>& runs, const StudyTask& task) {
  const StudyRun& run = runs[task.run];
  const FinetuneStage& stage = spec.finetune[task.stage];
  FinetuneArgs args;
  args.checkpoint = task.stage == 0 ? run.run_dir : run.finetune_dirs[task.stage - 1];
  args.task = stage.task;
  args.lengths = stage.lengths;
  args.lm_weight = stage.lm_weight;
  args.overrides = stage.overrides;
  args.overrides.push_back("out_dir=" + run.finetune_dirs[task.stage]);
  args.overrides.push_back("train.max_steps=" + std::to_string(stage.steps));
  return args;
}

LengthEvalArgs long_context_args(const StudySpec& spec, const std::vector<StudyRun>& runs, const StudyTask& task) {
  auto args = eval_args<LengthEvalArgs>(spec, runs, task);
  args.lengths = spec.long_context->lengths;
  if (task.theta_scale != 1) args.rope_theta_scale = task.theta_scale;
  args.windows = spec.long_context->windows;
  if (task.scaling >= 0) args.swap = spec.scalings[task.scaling].swap;
  return args;
}

NeedleArgs needle_args(const StudySpec& spec, const std::vector<StudyRun>& runs, const StudyTask& task) {
  auto args = eval_args<NeedleArgs>(spec, runs, task);
  args.lengths = spec.needle->lengths;
  args.depths = spec.needle->depths;
  args.trials = spec.needle->trials;
  args.max_new_tokens = spec.needle->max_new_tokens;
  args.seed = spec.needle->seed;
  return args;
}

AttentionArgs attention_args(const StudySpec& spec, const std::vector<StudyRun>& runs, const StudyTask& task) {
  auto args = eval_args<AttentionArgs>(spec, runs, task);
  args.length = task.length;
  args.depth = spec.attention->depth;
  args.trials = spec.attention->trials;
  return args;
}

RecallArgs recall_args(const StudySpec& spec, const std::vector<StudyRun>& runs, const StudyTask& task) {
  auto args = eval_args<RecallArgs>(spec, runs, task);
  args.lengths = spec.recall->lengths;
  args.sequences = spec.recall->sequences;
  args.seed = spec.recall->seed;
  if (task.scaling >= 0) args.swap = spec.scalings[task.scaling].swap;
  return args;
}

// Hands `use` the task's command arguments; a training task has none (its config was built and checked when the
// study file was read).
template <typename Use>
void with_arguments(const StudySpec& spec, const std::vector<StudyRun>& runs, const StudyTask& task, Use&& use) {
  switch (task.kind) {
    case Kind::Train:
      return;
    case Kind::Finetune:
      return use(finetune_args(spec, runs, task));
    case Kind::LongContext:
      return use(long_context_args(spec, runs, task));
    case Kind::Needle:
      return use(needle_args(spec, runs, task));
    case Kind::Attention:
      return use(attention_args(spec, runs, task));
    case Kind::Recall:
      return use(recall_args(spec, runs, task));
  }
}

// Runs the command; false when a signal stopped a finetune (it saved its checkpoint first).
bool run_command(const FinetuneArgs& args) { return run_finetune(args) == 0 && !InterruptGuard::requested(); }
bool run_command(const LengthEvalArgs& args) { return run_length_eval(args) == 0; }
bool run_command(const NeedleArgs& args) { return run_needle(args) == 0; }
bool run_command(const AttentionArgs& args) { return run_attention(args) == 0; }
bool run_command(const RecallArgs& args) { return run_recall(args) == 0; }

}  // namespace

void check_task_arguments(const StudySpec& spec, const std::vector<StudyRun>& runs,
                          const std::vector<StudyTask>& tasks) {
  for (const StudyTask& task : tasks) {
    try {
      with_arguments(spec, runs, task, [](const auto& args) { check_arguments(args); });
    } catch (const UsageError& e) {
      throw UsageError(spec.path + ": task '" + task.label + "': " + e.what());
    }
  }
}

bool run_task(const StudySpec& spec, const std::vector<StudyRun>& runs, const StudyTask& task) {
  if (task.kind == Kind::Train) return train_run(spec, runs[task.run]);
  bool finished = false;
  with_arguments(spec, runs, task, [&](const auto& args) { finished = run_command(args); });
  // A finetune keeps its state in its run directory; an evaluation is marked done, last: one cut short leaves no
  // marker and runs again.
  if (task.kind == Kind::Finetune || !finished) return finished;
  write_file_atomic((fs::path(task.out_dir) / kMarker).string(), task_settings(spec, runs, task).dump(2) + "\n");
  return true;
}

}  // namespace ssmax
