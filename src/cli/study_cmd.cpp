// ssmax-gpt study STUDY.json: every run, finetune and evaluation of a study file, then its report.
#include "cli/commands.h"
#include "study/study_runner.h"

namespace ssmax {

Command add_study_command(CLI::App& root) {
  auto* app = root.add_subcommand(
      "study", "Run a whole study (studies/*.json: variants × seeds, finetunes, long-context loss, needle, attention) "
               "and write report.md / report.html with statistics over seeds. Restartable: rerun the same command "
               "after Ctrl-C or a crash and it continues; --report-only rebuilds the report from what is on disk");
  auto options = std::make_shared<StudyOptions>();
  app->add_option("study", options->study_path, "Study file (JSON), e.g. studies/kjv-tiny.json")->required();
  auto* jobs =
      app->add_option(
             "--jobs", options->jobs,
             "Runs trained side by side, one child process each (logs in <out_dir>/logs/); on a small CPU "
             "machine several one-thread jobs get more done than one (2 cores: 3 jobs, +9 %). 1 under torchrun "
             "and on one GPU")
          ->capture_default_str();
  // --jobs and --run start work that --report-only would quietly skip: refused together rather than ignored.
  auto* report_only =
      app->add_flag("--report-only", options->report_only, "Write the report from what is on disk; train nothing")
          ->excludes(jobs);
  app->add_option("--run", options->only_run, "Only this run's tasks, no report (what --jobs starts)")
      ->excludes(report_only)
      ->group("");  // internal: not in --help
  add_set_option(*app, options->overrides);
  return {app, [options] { return run_study(*options); }};
}

}  // namespace ssmax
