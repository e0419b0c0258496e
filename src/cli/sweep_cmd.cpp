// ssmax-gpt sweep CONFIG --normalizers … --seeds … [--vary key=v1,v2 …]: every combination as its own run.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "cli/commands.h"
#include "cli/option_checks.h"
#include "config/config.h"
#include "train/sweep.h"
#include "util/errors.h"
#include "util/interrupt.h"
#include "util/text.h"

namespace ssmax {

Command add_sweep_command(CLI::App& root) {
  auto* app = root.add_subcommand(
      "sweep", "Train every combination of normalizers × --vary values × seeds, one run directory each under the "
               "config's out_dir, one after another. Restartable: finished runs are skipped, unfinished ones resume");
  struct Args {
    std::string config_path, normalizers, seeds;
    std::vector<std::string> vary, overrides;
  };
  auto args = std::make_shared<Args>();
  app->add_option("config", args->config_path, "JSON config file")->required();
  app->add_option("--normalizers", args->normalizers, "Comma-separated normalizers (default: the config's)");
  app->add_option("--seeds", args->seeds, "Comma-separated seeds (default: the config's)");
  app->add_option("--vary", args->vary,
                  "KEY=V1,V2,…: also vary a config key (repeatable), e.g. --vary model.attention.s_init=0.2,0.5")
      ->type_name("KEY=VALUES")
      ->allow_extra_args(false);
  add_set_option(*app, args->overrides);
  return {app, [app, args] {
            if (given(*app, "--normalizers") && split_list(args->normalizers).empty())
              throw UsageError("--normalizers: empty list; give e.g. softmax,ssmax or leave it out for the config's");
            if (given(*app, "--seeds") && split_list(args->seeds).empty())
              throw UsageError("--seeds: empty list; give e.g. 1,2,3 or leave it out for the config's");
            SweepPlan plan;
            plan.config_path = args->config_path;
            plan.overrides = args->overrides;
            if (!args->normalizers.empty())
              plan.axes.push_back({"model.attention.normalizer", split_list(args->normalizers)});
            for (const auto& vary : args->vary) {
              auto eq = vary.find('=');
              if (eq == std::string::npos || eq == 0 || eq + 1 == vary.size())
                throw UsageError("--vary " + vary + ": expected KEY=V1,V2,… (e.g. model.attention.s_init=0.2,0.5)");
              plan.axes.push_back({vary.substr(0, eq), split_list(vary.substr(eq + 1))});
            }
            if (!args->seeds.empty()) plan.axes.push_back({"seed", split_list(args->seeds)});
            // One key on two axes (or an axis and --set) would let the last assignment win in silence.
            std::vector<std::string> keys;
            for (const auto& axis : plan.axes) {
              if (axis.key == "out_dir" || axis.key == "name")
                throw UsageError("--vary " + axis.key +
                                 ": the sweep names each run <out_dir>/<name>; set the root "
                                 "with --set out_dir=DIR");
              const std::string label = axis.key == "seed"                         ? "--seeds"
                                        : axis.key == "model.attention.normalizer" ? "--normalizers"
                                                                                   : "--vary " + axis.key;
              check_distinct(label, axis.values, false);
              keys.push_back(axis.key);
            }
            check_distinct("swept key (--normalizers is model.attention.normalizer, --seeds is seed)", keys, false);
            for (const auto& assignment : args->overrides) {
              const std::string key = assignment.substr(0, assignment.find('='));
              if (std::find(keys.begin(), keys.end(), key) != keys.end())
                throw UsageError("--set " + assignment + ": " + key + " is also swept; drop one of them");
            }
            auto result = run_sweep(plan);
            if (!result.interrupted_run.empty()) {
              spdlog::warn("sweep interrupted during {}; run the same command again to continue",
                           result.interrupted_run);
              return InterruptGuard::exit_code();
            }
            spdlog::info("sweep done: {} runs ({} trained, {} already finished) under {}; compare them with: "
                         "ssmax-gpt compare {}/* --out {}/report",
                         result.runs, result.trained, result.skipped, result.root, result.root, result.root);
            return 0;
          }};
}

}  // namespace ssmax
