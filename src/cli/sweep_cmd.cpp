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
  struct Options {
    std::string normalizers, seeds;
  };
  auto args = std::make_shared<SweepArgs>();
  auto lists = std::make_shared<Options>();
  app->add_option("config", args->config_path, "JSON config file")->required();
  app->add_option("--normalizers", lists->normalizers, "Comma-separated normalizers (default: the config's)");
  app->add_option("--seeds", lists->seeds, "Comma-separated seeds (default: the config's)");
  app->add_option("--vary", args->vary,
                  "KEY=V1,V2,…: also vary a config key (repeatable), e.g. --vary model.attention.s_init=0.2,0.5")
      ->type_name("KEY=VALUES")
      ->allow_extra_args(false);
  add_set_option(*app, args->overrides);
  return {app, [app, args, lists] {
            // Given but empty would mean "the config's": refused here, where "given" is known.
            args->normalizers = split_list(lists->normalizers);
            args->seeds = split_list(lists->seeds);
            if (given(*app, "--normalizers") && args->normalizers.empty())
              throw UsageError("--normalizers: empty list; give e.g. softmax,ssmax or leave it out for the config's");
            if (given(*app, "--seeds") && args->seeds.empty())
              throw UsageError("--seeds: empty list; give e.g. 1,2,3 or leave it out for the config's");
            const SweepPlan plan = plan_sweep(*args);
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
