#pragma once
// `ssmax-gpt study STUDY.json`: every run, finetune and evaluation a study file implies, in order, skipping what is
// done and resuming what was cut short; then the report (study_report.h). Torch-free header.
#include <string>
#include <vector>

namespace ssmax {

struct StudyOptions {
  std::string study_path;
  std::vector<std::string> overrides;  // --set, on every run after the study's own "set"
  // Runs trained side by side, each in a child process of its own (logs in <out_dir>/logs/<run>.log). On a small
  // CPU machine two one-thread processes get more done than one two-thread process; on one GPU, keep 1.
  int jobs = 1;
  std::string only_run;      // a child's share: this run's tasks only, no report
  bool report_only = false;  // write the report from what is on disk; train and evaluate nothing
};

// Returns the exit code: 0 when everything is done, 128 + the signal when interrupted (130 Ctrl-C, 143 SIGTERM;
// rerun the same command to continue).
// Throws UsageError for a bad study file or options, RuntimeFailure when a run fails.
int run_study(const StudyOptions& options);

}  // namespace ssmax
