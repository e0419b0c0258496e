#include "train/sweep.h"

#include <spdlog/spdlog.h>

#include <filesystem>

#include "config/config.h"
#include "config/json_paths.h"
#include "run/checkpoint_catalog.h"
#include "train/trainer.h"
#include "util/errors.h"

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

}  // namespace ssmax
