#pragma once
// The units of work of a study: for each run, training (with its normalizer switch, if any), the finetune stages,
// then the evaluations of that run. Each knows whether it is already done from the files on disk alone, so any
// invocation (or a process that died) picks up where the last one stopped. Torch-free.
#include <string>
#include <vector>

#include "study/study_spec.h"

namespace ssmax {

struct StudyTask {
  enum class Kind { Train, Finetune, LongContext, Needle, Attention, Recall };
  Kind kind = Kind::Train;
  size_t run = 0;          // index into the runs of expand_runs
  size_t stage = 0;        // Finetune: index into StudySpec::finetune
  double theta_scale = 1;  // LongContext
  int64_t length = 0;      // Attention
  int scaling = -1;        // LongContext, Recall: index into StudySpec::scalings, or -1 for the model as trained
  std::string label;       // "finetune needle softmax-seed1", for progress lines
  std::string out_dir;     // evaluations: where their JSON lands (a run directory for training tasks)
  double cost = 0;         // rough work in token-equivalents (a trained token counts 3, an evaluated one 1), for ETAs
};

// Every task of the study, run by run (seed-major), each run's evaluations right after its training.
std::vector<StudyTask> plan_tasks(const StudySpec& spec, const std::vector<StudyRun>& runs);

// Every run directory already on disk must hold the run the study file describes now (keys a resume may change and
// the normalizer switch's keys aside): checked before any task runs and before a report is written, so a changed
// study file never continues, or reports on, models of another shape. Throws UsageError naming the keys.
void check_runs_on_disk(const StudySpec& spec, const std::vector<StudyRun>& runs);

// Every task's command arguments, checked as the command checks them (check_arguments) before the first task runs,
// so a bad setting is refused before hours of training, not when its task comes. UsageError naming the task.
void check_task_arguments(const StudySpec& spec, const std::vector<StudyRun>& runs,
                          const std::vector<StudyTask>& tasks);

// Whether the task's result is on disk and belongs to the same settings.
bool task_done(const StudySpec& spec, const std::vector<StudyRun>& runs, const StudyTask& task);

// How far an unfinished training or finetune task got (its newest checkpoint's step over its steps); 0 for the
// evaluations, which have no intermediate state. For ETAs.
double task_fraction(const StudySpec& spec, const std::vector<StudyRun>& runs, const StudyTask& task);

// Runs one task. Returns false when a signal stopped it (training writes its checkpoint first); throws UsageError /
// RuntimeFailure as the underlying command does.
bool run_task(const StudySpec& spec, const std::vector<StudyRun>& runs, const StudyTask& task);

// Where the evaluations of a study land: <out_dir>/evals/<kind>/…/<run name>.
std::string long_context_dir(const StudySpec& spec, double theta_scale, int scaling, const StudyRun& run);
std::string needle_dir(const StudySpec& spec, const StudyRun& run);
std::string attention_dir(const StudySpec& spec, int64_t length, const StudyRun& run);
std::string recall_dir(const StudySpec& spec, int scaling, const StudyRun& run);
// The scalings a run's evaluations take: -1 (the model as trained), then the indices into StudySpec::scalings that
// name its variant.
std::vector<int> scalings_of(const StudySpec& spec, const StudyRun& run);

}  // namespace ssmax
