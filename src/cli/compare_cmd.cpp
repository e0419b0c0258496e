// ssmax-gpt compare RUN_DIR... --out REPORT_DIR: tables, plots, CSV and JSON comparing runs by variant.
#include <cstdio>

#include "cli/commands.h"
#include "report/compare.h"

namespace ssmax {

Command add_compare_command(CLI::App& root) {
  auto* app = root.add_subcommand(
      "compare",
      "Group runs into variants by their config difference (seed, out_dir and name ignored); print final/best "
      "loss per variant (mean ± std over seeds) and pairwise Welch t-tests; write loss.png/.svg, s.png/.svg "
      "(SSMax), curves.csv and summary.json into REPORT_DIR");
  auto options = std::make_shared<CompareOptions>();
  app->add_option("runs", options->run_dirs, "Run directories (each with config.json and metrics.jsonl)")->required();
  app->add_option("--out", options->out_dir, "Report directory (created; only its report files are replaced)")
      ->required();
  app->add_option("--metric", options->metric, "Loss to compare: val_loss or train_loss")->capture_default_str();
  app->add_option("--x", options->x_axis,
                  "x axis of the curves: optimizer step, training tokens, or training "
                  "time in seconds: step, tokens or time")
      ->capture_default_str();
  app->add_option("--smooth", options->smooth,
                  "EMA weight of the past in [0, 1) for the plotted curves (debiased like TensorBoard; 0 = none); "
                  "the table always uses raw values")
      ->capture_default_str();
  app->add_flag("--log-x", options->log_x, "Logarithmic x axis (points at x = 0 are left out)");
  app->add_flag("--force", options->force, "Compare runs even if they were trained on different data");
  return {app, [options] {
            const CompareReport report = compare_runs(*options);  // which checks the options first
            std::printf("%s\n", report.text.c_str());
            std::printf("report written to %s:", options->out_dir.c_str());
            for (const auto& file : report.files) std::printf(" %s", file.substr(file.rfind('/') + 1).c_str());
            std::printf("\n");
            return 0;
          }};
}

}  // namespace ssmax
