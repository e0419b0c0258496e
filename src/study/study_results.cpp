#include "study/study_results.h"

#include <cmath>
#include <filesystem>

#include "eval/eval_commands.h"
#include "run/run_paths.h"
#include "study/study_tasks.h"
#include "util/files.h"

namespace ssmax {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::optional<json> read_json(const fs::path& path, std::vector<std::string>& warnings) {
  if (!fs::exists(path)) return std::nullopt;
  try {
    return json::parse(read_file(path.string()));
  } catch (const std::exception& e) {
    warnings.push_back(path.string() + ": cannot be read (" + e.what() + "); left out of the report");
    return std::nullopt;
  }
}

void read_training(const StudyRun& run, RunResults& out, std::vector<std::string>& warnings) {
  const auto data = load_run(run.run_dir, warnings);
  if (!data) return;
  out.trained = !data->in_progress;
  out.val_curve = metric_curve(*data, "val_loss", XAxis::Step);
  out.train_curve = metric_curve(*data, "train_loss", XAxis::Step);
  if (!out.val_curve.y.empty()) out.final_val_loss = out.val_curve.y.back();
  if (!out.train_curve.y.empty()) out.final_train_loss = out.train_curve.y.back();
  for (auto it = data->records.rbegin(); it != data->records.rend(); ++it)
    if (!it->normalizer.empty()) {
      out.normalizer = it->normalizer;
      break;
    }
}

// Only evaluations whose task is done under the study's current settings count (task_done checks the marker).
void read_long_context(const StudyTask& task, RunResults& out, std::vector<std::string>& warnings) {
  const auto report = read_json(fs::path(task.out_dir) / kLengthEvalReport, warnings);
  if (!report) return;
  for (const auto& result : report->at("results"))
    out.long_context[task.scaling][task.theta_scale][result.at("length").get<int64_t>()] =
        result.at("loss").get<double>();
}

void read_needle(const StudyTask& task, RunResults& out, std::vector<std::string>& warnings) {
  const auto report = read_json(fs::path(task.out_dir) / kNeedleReport, warnings);
  if (!report || report->at("results").empty()) return;
  const json& result = report->at("results")[0];
  NeedleCells cells;
  cells.lengths = report->at("lengths").get<std::vector<int64_t>>();
  cells.depths = report->at("depths").get<std::vector<double>>();
  cells.trials = report->at("trials").get<int>();
  cells.exact = result.at("exact").get<std::vector<std::vector<double>>>();
  cells.digits = result.at("digit_accuracy").get<std::vector<std::vector<double>>>();
  cells.block_size = result.at("block_size").get<int64_t>();
  out.needle = cells;
}

void read_attention(const StudySpec& spec, const StudyTask& task, RunResults& out, std::vector<std::string>& warnings) {
  const std::string stem = attention_file_stem(task.length, spec.attention->depth);
  const auto report = read_json(fs::path(task.out_dir) / (stem + ".json"), warnings);
  if (!report || report->at("results").empty()) return;
  const json& probe = report->at("results")[0];
  AttentionResult result;
  result.mass = probe.at("mass").get<std::vector<std::vector<double>>>();
  result.uniform = probe.at("uniform_mass").get<double>();
  double sum = 0;
  size_t heads = 0;
  for (const auto& layer : result.mass)
    for (double m : layer) {
      result.top_mass = std::max(result.top_mass, m);
      sum += m;
      ++heads;
    }
  result.mean_mass = heads ? sum / static_cast<double>(heads) : std::nan("");
  out.attention[task.length] = result;
}

void read_recall(const StudyTask& task, RunResults& out, std::vector<std::string>& warnings) {
  const auto report = read_json(fs::path(task.out_dir) / kRecallReport, warnings);
  if (!report) return;
  for (const auto& result : report->at("results"))
    out.recall[task.scaling][result.at("length").get<int64_t>()] = {
        result.at("accuracy").get<double>(), result.at("loss").get<double>(), result.at("best_head_mass").get<double>(),
        result.at("block_size").get<int64_t>()};
}

}  // namespace

std::vector<RunResults> collect_results(const StudySpec& spec, const std::vector<StudyRun>& runs,
                                        std::vector<std::string>& warnings) {
  std::vector<RunResults> results(runs.size());
  for (size_t r = 0; r < runs.size(); ++r)
    if (fs::exists(RunPaths(runs[r].run_dir).metrics())) read_training(runs[r], results[r], warnings);
  for (const auto& task : plan_tasks(spec, runs)) {
    if (task.kind == StudyTask::Kind::Train || task.kind == StudyTask::Kind::Finetune) continue;
    if (!task_done(spec, runs, task)) continue;
    try {
      if (task.kind == StudyTask::Kind::LongContext) read_long_context(task, results[task.run], warnings);
      if (task.kind == StudyTask::Kind::Needle) read_needle(task, results[task.run], warnings);
      if (task.kind == StudyTask::Kind::Attention) read_attention(spec, task, results[task.run], warnings);
      if (task.kind == StudyTask::Kind::Recall) read_recall(task, results[task.run], warnings);
    } catch (const json::exception& e) {
      warnings.push_back(task.out_dir + ": unexpected layout (" + e.what() + "); left out of the report");
    }
  }
  return results;
}

}  // namespace ssmax
