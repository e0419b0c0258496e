#include "train/sweep.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

#include "config/config.h"
#include "config/json_paths.h"
#include "run/checkpoint_catalog.h"
#include "train/trainer.h"
#include "util/arg_checks.h"
#include "util/errors.h"
#include "util/text.h"

namespace ssmax {
namespace fs = std::filesystem;

namespace {

struct PlannedRun {
  std::string name;
  std::vector<std::string> assignments;  // axis values as --set KEY=VALUE
};

std::vector<PlannedRun> expand(const std::vector<SweepAxis>& axes) {
  std::vector<PlannedRun> runs(1);
  for (const auto& axis : axes) {
    if (axis.values.empty()) throw UsageError("sweep: no values given for " + axis.key);
    std::vector<PlannedRun> next;
    for (const auto& run : runs)
      for (const auto& value : axis.values) {
        PlannedRun extended = run;
        extended.name += (extended.name.empty() ? "" : "_") + leaf_key(axis.key) + "=" + value;
        extended.assignments.push_back(axis.key + "=" + value);
        next.push_back(extended);
      }
    runs = next;
  }
  return runs;
}

}  // namespace

SweepResult run_sweep(const SweepPlan& plan) {
  const Config base = load_config(plan.config_path, plan.overrides);
  SweepResult result;
  result.root = base.out_dir;
  auto planned = expand(plan.axes);
  if (planned.size() == 1 && planned[0].name.empty()) planned[0].name = "run";
  std::vector<Config> configs;
  for (const auto& run : planned) {  // validate everything first
    auto overrides = plan.overrides;
    overrides.insert(overrides.end(), run.assignments.begin(), run.assignments.end());
    overrides.push_back("out_dir=" + (fs::path(base.out_dir) / run.name).string());
    overrides.push_back("name=" + base.name + "/" + run.name);
    configs.push_back(load_config(plan.config_path, overrides));
    if (!configs.back().init_from.empty())  // its model section comes from the checkpoint, which only `train` reads
      throw UsageError(plan.config_path + ": init_from = '" + configs.back().init_from +
                       "': a sweep does not start runs from a Hugging Face checkpoint (only `train --init-from` "
                       "imports one); leave init_from empty");
  }
  result.runs = static_cast<int>(configs.size());
  for (size_t i = 0; i < configs.size(); ++i) {
    const Config& config = configs[i];
    spdlog::info("== run {}/{}: {} ==", i + 1, configs.size(), planned[i].name);
    auto checkpoints = list_checkpoints(config.out_dir);
    if (!checkpoints.empty() && checkpoints.back().step >= config.train.max_steps) {
      spdlog::info("{} is finished (step {}): skipped", config.out_dir, checkpoints.back().step);
      ++result.skipped;
      continue;
    }
    TrainSummary summary;
    if (!checkpoints.empty()) {
      // Same command again: resume where it stopped, with the (possibly changed) allowed keys.
      summary = resume(config.out_dir, {"train.max_steps=" + std::to_string(config.train.max_steps)});
    } else {
      summary = train(config);
    }
    if (summary.interrupted) {
      result.interrupted_run = config.out_dir;
      return result;
    }
    ++result.trained;
  }
  return result;
}

SweepPlan plan_sweep(const SweepArgs& args) {
  SweepPlan plan;
  plan.config_path = args.config_path;
  plan.overrides = args.overrides;
  if (!args.normalizers.empty()) plan.axes.push_back({"model.attention.normalizer", args.normalizers});
  for (const auto& vary : args.vary) {
    auto eq = vary.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == vary.size())
      throw UsageError("--vary " + vary + ": expected KEY=V1,V2,… (e.g. model.attention.s_init=0.2,0.5)");
    plan.axes.push_back({vary.substr(0, eq), split_list(vary.substr(eq + 1))});
  }
  if (!args.seeds.empty()) plan.axes.push_back({"seed", args.seeds});
  // One key on two axes (or an axis and --set) would let the last assignment win in silence.
  std::vector<std::string> keys;
  for (const auto& axis : plan.axes) {
    if (axis.key == "out_dir" || axis.key == "name")
      throw UsageError("--vary " + axis.key +
                       ": the sweep names each run <out_dir>/<name>; set the root with --set "
                       "out_dir=DIR");
    const std::string label = axis.key == "seed"                         ? "--seeds"
                              : axis.key == "model.attention.normalizer" ? "--normalizers"
                                                                         : "--vary " + axis.key;
    check_distinct(label, axis.values, false);
    keys.push_back(axis.key);
  }
  check_distinct("swept key (--normalizers is model.attention.normalizer, --seeds is seed)", keys, false);
  for (const auto& assignment : args.overrides) {
    const std::string key = assignment.substr(0, assignment.find('='));
    if (std::find(keys.begin(), keys.end(), key) != keys.end())
      throw UsageError("--set " + assignment + ": " + key + " is also swept; drop one of them");
  }
  return plan;
}

}  // namespace ssmax
