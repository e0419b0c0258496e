#include "study/study_runner.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <thread>

#include "config/config.h"
#include "data/prepare.h"
#include "dist/distributed.h"
#include "study/study_report.h"
#include "study/study_tasks.h"
#include "train/session.h"
#include "util/errors.h"
#include "util/files.h"
#include "util/interrupt.h"
#include "util/logging.h"
#include "util/progress.h"
#include "util/text.h"

namespace ssmax {
namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// Work done and left, in the tasks' token-equivalents (a training task counts the part its checkpoints cover); the
// rate of this invocation gives the ETA.
class StudyProgress {
 public:
  StudyProgress(const StudySpec& spec, const std::vector<StudyRun>& runs, const std::vector<StudyTask>& tasks)
      : spec_(spec), runs_(runs), tasks_(tasks), done_(tasks.size()) {
    refresh();
    initial_work_ = work_done();
  }
  size_t count() const { return static_cast<size_t>(std::count(done_.begin(), done_.end(), true)); }
  bool done(size_t i) const { return done_[i]; }
  void mark(size_t i) { done_[i] = true; }
  void refresh() {
    for (size_t i = 0; i < tasks_.size(); ++i)
      if (!done_[i]) done_[i] = task_done(spec_, runs_, tasks_[i]);
  }
  bool all_done() const { return count() == tasks_.size(); }
  std::string line() const {
    double total = 0;
    for (const auto& task : tasks_) total += task.cost;
    const double done = work_done(), left = total - done, now = done - initial_work_;
    const double elapsed = seconds_since(start_);
    std::string eta = "ETA after the first checkpoint";
    if (left <= 0) eta = "done";
    else if (now > 0) eta = "ETA ~" + duration_text(left * elapsed / now);
    return std::to_string(count()) + "/" + std::to_string(tasks_.size()) + " tasks done (" +
           std::to_string(static_cast<int>(100 * done / std::max(total, 1.0))) + " % of the work), " +
           duration_text(elapsed) + " elapsed, " + eta;
  }

 private:
  double work_done() const {
    double work = 0;
    for (size_t i = 0; i < tasks_.size(); ++i)
      work += tasks_[i].cost * (done_[i] ? 1.0 : std::min(1.0, task_fraction(spec_, runs_, tasks_[i])));
    return work;
  }
  const StudySpec& spec_;
  const std::vector<StudyRun>& runs_;
  const std::vector<StudyTask>& tasks_;
  std::vector<bool> done_;
  double initial_work_ = 0;  // before this invocation: not part of its rate
  Clock::time_point start_ = Clock::now();
};

// One process does the tasks itself. Under torchrun every rank trains the pretraining runs together; finetunes and
// evaluations run in one process only, so they are left for a later invocation without torchrun.
bool run_in_process(const StudySpec& spec, const std::vector<StudyRun>& runs, const std::vector<StudyTask>& tasks,
                    StudyProgress& progress, const std::string& log_path) {
  const bool distributed = Distributed::instance().active();
  for (size_t i = 0; i < tasks.size(); ++i) {
    if (progress.done(i) || (distributed && tasks[i].kind != StudyTask::Kind::Train)) continue;
    if (InterruptGuard::requested()) return false;
    spdlog::info("== study {}: {} ({}) ==", spec.name, tasks[i].label, progress.line());
    const bool finished = run_task(spec, runs, tasks[i]);
    if (!log_path.empty() && (tasks[i].kind == StudyTask::Kind::Train || tasks[i].kind == StudyTask::Kind::Finetune))
      log_to_file(log_path);  // training logged into its run's train.log
    if (!finished) return false;
    progress.mark(i);
  }
  return true;
}

std::string self_executable() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw RuntimeFailure("study --jobs: cannot find this program's path (/proc/self/exe): " + ec.message());
  return exe.string();
}

// A child process doing one run's tasks, in its own process group (a Ctrl-C at the terminal reaches the parent
// alone, which passes it on exactly once: a second SIGINT would make a child leave without its checkpoint).
pid_t spawn_run(const StudyOptions& options, const StudyRun& run, const std::string& log_path) {
  std::vector<std::string> args = {self_executable(), "study", options.study_path, "--run", run.name};
  for (const auto& assignment : options.overrides) args.insert(args.end(), {"--set", assignment});
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  posix_spawn_file_actions_addopen(&files, STDOUT_FILENO, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&files, STDOUT_FILENO, STDERR_FILENO);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attributes, 0);
  pid_t pid = 0;
  const int error = posix_spawn(&pid, argv[0], &files, &attributes, argv.data(), environ);
  posix_spawn_file_actions_destroy(&files);
  posix_spawnattr_destroy(&attributes);
  if (error != 0)
    throw RuntimeFailure("study --jobs: cannot start " + args[0] + " for " + run.name + ": " + std::strerror(error));
  return pid;
}

// Runs side by side, `jobs` at a time. Returns false when interrupted; throws when a run failed (after the others
// have stopped).
bool run_in_children(const StudyOptions& options, const StudySpec& spec, const std::vector<StudyRun>& runs,
                     const std::vector<StudyTask>& tasks, StudyProgress& progress) {
  std::vector<size_t> pending;
  for (size_t r = 0; r < runs.size(); ++r)
    for (size_t i = 0; i < tasks.size(); ++i)
      if (tasks[i].run == r && !progress.done(i)) {
        pending.push_back(r);
        break;
      }
  const fs::path logs = fs::path(spec.out_dir) / "logs";
  fs::create_directories(logs);
  // Every run reads the same dataset: built once here, not by several children racing to build one cache entry
  // (the recall task has none: its sequences are generated).
  const Config base = load_config(spec.config_path, runs.front().overrides);
  if (base.data.task == "text") prepare_dataset(base.data, base.threads);
  std::map<pid_t, size_t> running;
  std::string failure;
  bool stopping = false, forwarded = false;
  auto last_report = Clock::now();
  size_t next = 0;
  while ((!stopping && next < pending.size()) || !running.empty()) {
    if (InterruptGuard::requested()) stopping = true;
    if (stopping && !forwarded && InterruptGuard::requested()) {
      for (const auto& [pid, r] : running) ::kill(pid, InterruptGuard::signal_number());
      forwarded = true;
    }
    while (!stopping && running.size() < static_cast<size_t>(options.jobs) && next < pending.size()) {
      const StudyRun& run = runs[pending[next++]];
      const std::string log = (logs / (run.name + ".log")).string();
      running[spawn_run(options, run, log)] = pending[next - 1];
      spdlog::info("study: started {} (log: {})", run.name, log);
    }
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0 && running.count(pid)) {
      const StudyRun& run = runs[running[pid]];
      running.erase(pid);
      const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      progress.refresh();
      if (code == 0) {
        spdlog::info("study: {} finished ({})", run.name, progress.line());
      } else if (code == 128 + SIGINT || code == 128 + SIGTERM || InterruptGuard::requested()) {
        stopping = true;
      } else if (failure.empty()) {
        failure =
            run.name + " failed (exit " + std::to_string(code) + "); its log: " + (logs / (run.name + ".log")).string();
        spdlog::error("study: {}; stopping the other runs", failure);
        stopping = true;
        for (const auto& [other, r] : running) ::kill(other, SIGINT);
      }
      continue;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    if (Clock::now() - last_report > std::chrono::seconds(60)) {
      last_report = Clock::now();
      progress.refresh();
      std::string names;
      for (const auto& [other, r] : running) names += (names.empty() ? "" : ", ") + runs[r].name;
      spdlog::info("study: {}; running: {}", progress.line(), names);
    }
  }
  if (!failure.empty()) throw RuntimeFailure("study " + spec.name + ": " + failure);
  return !stopping;
}

}  // namespace

int run_study(const StudyOptions& options) {
  if (options.jobs < 1) throw UsageError("--jobs " + std::to_string(options.jobs) + ": must be >= 1");
  const StudySpec spec = load_study(options.study_path, options.overrides);
  const std::vector<StudyRun> runs = expand_runs(spec);
  const std::vector<StudyTask> tasks = plan_tasks(spec, runs);
  check_runs_on_disk(spec, runs);
  check_task_arguments(spec, runs, tasks);
  if (options.report_only) {
    // A report of nothing would look like a study that found nothing: say there is nothing yet.
    const auto on_disk =
        std::count_if(runs.begin(), runs.end(), [](const StudyRun& r) { return fs::exists(r.run_dir); });
    if (on_disk == 0)
      throw RuntimeFailure(spec.path + ": no run of study " + spec.name + " is on disk under " + spec.out_dir +
                           "; run `ssmax-gpt study " + spec.path + "` first");
    write_study_report(spec, runs);
    spdlog::info("study {}: report from the {} of {} runs on disk: {}", spec.name, on_disk, runs.size(),
                 (fs::path(spec.out_dir) / "report.html").string());
    return 0;
  }
  const Config base = load_config(spec.config_path, runs.front().overrides);
  const bool launched = read_launch_environment().launched;
  if (launched && options.jobs > 1)
    throw UsageError("--jobs " + std::to_string(options.jobs) +
                     ": under torchrun the ranks share each run; use --jobs 1");
  InterruptGuard guard;

  if (!options.only_run.empty()) {  // a child of --jobs
    std::vector<StudyTask> mine;
    for (const auto& task : tasks)
      if (runs[task.run].name == options.only_run) mine.push_back(task);
    if (mine.empty()) throw UsageError("--run " + options.only_run + ": no such run in " + spec.path);
    StudyProgress progress(spec, runs, mine);
    return run_in_process(spec, runs, mine, progress, "") ? 0 : InterruptGuard::exit_code();
  }

  if (launched) join_process_group(base);
  const bool main_rank = Distributed::instance().is_main();
  const std::string log_path = (fs::path(spec.out_dir) / "study.log").string();
  if (main_rank) {
    fs::create_directories(spec.out_dir);
    json resolved = spec.document;
    resolved["command_line_set"] = options.overrides;
    write_file_atomic((fs::path(spec.out_dir) / "study.json").string(), resolved.dump(2) + "\n");
    log_to_file(log_path);
  }
  StudyProgress progress(spec, runs, tasks);
  spdlog::info("study {}: {} variants × {} seeds = {} runs, {} tasks ({} done already) into {}", spec.name,
               spec.variants.size(), spec.seeds.size(), runs.size(), tasks.size(), progress.count(), spec.out_dir);
  const bool finished = options.jobs > 1 && !launched
                            ? run_in_children(options, spec, runs, tasks, progress)
                            : run_in_process(spec, runs, tasks, progress, main_rank ? log_path : "");
  progress.refresh();
  if (main_rank) {
    write_study_report(spec, runs);
    spdlog::info("study {}: {}; report: {} (and report.md, report.json, figures/)", spec.name, progress.line(),
                 (fs::path(spec.out_dir) / "report.html").string());
  }
  if (!finished) {
    spdlog::warn("study {} interrupted ({}): run the same command again to continue", spec.name, progress.line());
    return InterruptGuard::exit_code();
  }
  if (!progress.all_done()) {
    if (!launched) throw RuntimeFailure("study " + spec.name + ": every task ran, yet " + progress.line());
    spdlog::info("study {}: the pretraining runs are done on {} processes; finetunes and evaluations run in one "
                 "process: run `ssmax-gpt study {}` without torchrun to finish",
                 spec.name, Distributed::instance().world_size(), spec.path);
  }
  return 0;
}

}  // namespace ssmax
