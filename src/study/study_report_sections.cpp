#include <ctime>
#include <filesystem>

#include "config/normalizer_kind.h"
#include "report/heatmap.h"
#include "study/study_report_builder.h"
#include "study/study_tasks.h"
#include "util/files.h"
#include "util/system_info.h"
#include "util/text.h"

namespace ssmax {
namespace fs = std::filesystem;
using json = nlohmann::json;

StudyReportBuilder::StudyReportBuilder(const StudySpec& spec, const std::vector<StudyRun>& runs)
    : spec_(spec), runs_(runs), results_(collect_results(spec, runs, warnings_)), family_(spec.alpha) {
  for (size_t v = 0; v < spec.variants.size(); ++v) {
    names_.push_back(spec.variants[v].name);
    if (spec.variants[v].name == spec.baseline) base_ = v;
  }
}

void StudyReportBuilder::plan_comparisons() {
  for (size_t a = 0; a < names_.size(); ++a)
    for (size_t b = a + 1; b < names_.size(); ++b)
      training_tests_.push_back(family_.add(
          {"final validation loss", " nats", names_[a], names_[b], values(a, final_val()), values(b, final_val())}));
  if (spec_.long_context)
    for (double scale : spec_.long_context->rope_theta_scales) {
      Comparison kind;
      kind.topic = " (RoPE θ×" + short_number(scale) + ")";
      kind.unit = " nats";
      add_arm_comparisons(
          "loss at ", spec_.long_context->lengths, kind,
          [&](const EvalArm& arm, int64_t length) {
            return values(arm.variant, long_context_loss(scale, length, arm.scaling));
          },
          long_context_tests_);
    }
  if (spec_.needle) {
    for (size_t v = 0; v < names_.size(); ++v) needles_.push_back(pool_needle(v));
    for (size_t v = 0; v < names_.size(); ++v)
      if (v != base_) {
        Comparison c{"needle exact-match rate beyond the training length",
                     "",
                     names_[base_],
                     names_[v],
                     needles_[base_].beyond_per_seed,
                     needles_[v].beyond_per_seed};
        c.higher_is_better = true;
        c.decimals = 3;
        needle_tests_.push_back(family_.add(c));
      }
  }
  if (spec_.recall) {
    // At the longest length only (the claim is about long contexts; every length more would add as many tests to
    // the family): the table shows every length.
    const auto [lengths, block_size] = recall_lengths();
    std::vector<int64_t> beyond;
    if (!lengths.empty() && lengths.back() > block_size) beyond.push_back(lengths.back());
    Comparison kind;
    kind.higher_is_better = true;
    kind.decimals = 3;
    add_arm_comparisons(
        "recall accuracy at ", beyond, kind,
        [&](const EvalArm& arm, int64_t length) { return recall_values(arm, length, false); }, recall_tests_);
  }
  family_.adjust();
}

DocumentSection StudyReportBuilder::findings() const {
  std::vector<std::string> sentences;
  for (size_t id : training_tests_)
    if (family_.at(id).a == spec_.baseline || family_.at(id).b == spec_.baseline)
      sentences.push_back(family_.verdict(family_.at(id)));
  if (spec_.long_context) {
    const std::string longest = "loss at " + std::to_string(spec_.long_context->lengths.back()) + " tokens";
    for (size_t id : long_context_tests_)
      if (family_.at(id).topic.rfind(longest, 0) == 0) sentences.push_back(family_.verdict(family_.at(id)));
  }
  for (size_t id : needle_tests_) sentences.push_back(family_.verdict(family_.at(id)));
  if (spec_.recall) {
    const auto lengths = recall_lengths().first;
    const std::string longest = lengths.empty() ? "" : "recall accuracy at " + std::to_string(lengths.back()) + " ";
    for (size_t id : recall_tests_)
      if (family_.at(id).topic.rfind(longest, 0) == 0) sentences.push_back(family_.verdict(family_.at(id)));
  }
  DocumentSection section{"Findings", {}};
  section.list(sentences);
  section.text("Listed: each variant against the baseline on the final validation loss, the loss at the longest "
               "evaluation length, needle retrieval beyond the training length and recall at the longest length. Every "
               "test is in the tables below; "
               "all count in the correction.");
  return section;
}

DocumentSection StudyReportBuilder::attention() {
  const AttentionSpec& as = *spec_.attention;
  DocumentSection section{"Attention on the needle (the paper's Figures 7–8)", {}};
  section.text("The final query's attention weights on the needle's tokens, depth " + fixed_text(as.depth, 2) + ", " +
               std::to_string(as.trials) +
               " prompts per model, by the model the needle test uses; per layer and "
               "head, then the head with the most. Uniform attention would put the 'uniform' mass there.");
  json out = json::object();
  for (int64_t length : as.lengths) {
    DocumentTable table{"Prompt length " + std::to_string(length),
                        {"variant", "top head mass", "top / uniform", "mean over heads", "uniform"},
                        {}};
    for (size_t v = 0; v < names_.size(); ++v) {
      std::vector<double> top, mean_mass, uniform;
      std::vector<std::vector<double>> grid;
      size_t n = 0;
      for (size_t r = 0; r < runs_.size(); ++r) {
        const auto it = results_[r].attention.find(length);
        if (runs_[r].variant != v || it == results_[r].attention.end()) continue;
        top.push_back(it->second.top_mass);
        mean_mass.push_back(it->second.mean_mass);
        uniform.push_back(it->second.uniform);
        if (grid.empty()) grid.assign(it->second.mass.size(), std::vector<double>(it->second.mass[0].size(), 0));
        for (size_t l = 0; l < grid.size(); ++l)
          for (size_t h = 0; h < grid[l].size(); ++h) grid[l][h] += it->second.mass[l][h];
        ++n;
      }
      table.rows.push_back({names_[v], mean_std_text(top, 4),
                            top.empty() ? "–" : fixed_text(mean(top) / mean(uniform), 1) + "×",
                            mean_std_text(mean_mass, 4), top.empty() ? "–" : fixed_text(mean(uniform), 4)});
      out[std::to_string(length)][names_[v]] = {
          {"top_mass", stat_json(top)}, {"mean_mass", stat_json(mean_mass)}, {"uniform", stat_json(uniform)}};
      if (n == 0) continue;
      Heatmap heatmap;
      heatmap.title = "Attention on the needle: " + names_[v] + ", " + std::to_string(length) + " tokens";
      heatmap.note = "mean over " + std::to_string(n) + " seed(s)";
      heatmap.row_label = "layer";
      heatmap.column_label = "head";
      double hi = 1e-6;
      for (size_t l = 0; l < grid.size(); ++l) {
        heatmap.rows.push_back(std::to_string(l));
        for (double& m : grid[l]) hi = std::max(hi, m /= static_cast<double>(n));
      }
      for (size_t h = 0; h < grid[0].size(); ++h) heatmap.columns.push_back(std::to_string(h));
      heatmap.values = grid;
      heatmap.hi = hi;
      heatmap.format = "%.3f";
      out[std::to_string(length)][names_[v]]["mass_mean_over_seeds"] = grid;
      attention_figures_.push_back({save("attention_" + names_[v] + "_L" + std::to_string(length),
                                         [&](const std::string& stem) { return write_heatmap(heatmap, stem); }),
                                    heatmap.title});
    }
    section.add(table);
  }
  for (const auto& [path, caption] : attention_figures_) section.figure(path, caption);
  summary_["attention"] = out;
  return section;
}

DocumentSection StudyReportBuilder::learned_parameters() const {
  DocumentSection section{"Learned SSMax parameters", {}};
  section.text("Per layer: the mean over heads of each seed's final value, then mean ± std over seeds.");
  for (const char* which : kNormalizerParameters) {
    std::vector<std::vector<std::string>> rows;
    size_t layers = 0;
    for (size_t v = 0; v < names_.size(); ++v) {
      std::vector<std::vector<double>> per_layer;  // [layer][seed]
      for (size_t r = 0; r < runs_.size(); ++r) {
        const auto it = results_[r].normalizer.find(which);
        if (it == results_[r].normalizer.end()) continue;
        const auto& grid = it->second;
        if (runs_[r].variant != v || grid.empty()) continue;
        per_layer.resize(grid.size());
        for (size_t l = 0; l < grid.size(); ++l) per_layer[l].push_back(mean(grid[l]));
      }
      if (per_layer.empty()) continue;
      layers = std::max(layers, per_layer.size());
      std::vector<std::string> row{names_[v]};
      for (const auto& seeds : per_layer) row.push_back(mean_std_text(seeds, 3));
      rows.push_back(row);
    }
    if (rows.empty()) continue;
    DocumentTable table{std::string(which) + " per layer", {"variant"}, rows};
    for (size_t l = 0; l < layers; ++l) table.header.push_back("layer " + std::to_string(l));
    for (auto& row : table.rows) row.resize(layers + 1, "–");
    section.add(table);
  }
  if (section.blocks.size() == 1) section.text("No variant of this study learns s or b.");
  return section;
}

DocumentSection StudyReportBuilder::reproduce() const {
  DocumentSection section{"Reproducing this study", {}};
  section.list(
      {"Command: ssmax-gpt study " + spec_.path + " (the --set values of the last invocation are in " +
           (fs::path(spec_.out_dir) / "study.json").string() + ")",
       "Source revision: " + git_revision(),
       "Machine: " + host_name() + ", " + cpu_model() + ", " + std::to_string(hardware_threads()) + " hardware threads",
       "Each run's exact configuration (every key resolved): " +
           (fs::path(spec_.out_dir) / "runs" / "<run>" / "config.json").string() +
           "; finetunes: <run>-ft-<task>/config.json and finetune.json"});
  section.text("The study file:");
  section.code(spec_.document.dump(2));
  return section;
}

StudyReport StudyReportBuilder::build() {
  const auto tasks = plan_tasks(spec_, runs_);
  size_t done = 0;
  for (const auto& task : tasks) done += task_done(spec_, runs_, task) ? 1 : 0;
  fs::create_directories(fs::path(spec_.out_dir) / "figures");
  plan_comparisons();
  char generated[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(generated, sizeof generated, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&now));
  summary_ = {{"study", spec_.name},        {"study_file", spec_.path},
              {"generated", generated},     {"tasks", tasks.size()},
              {"tasks_done", done},         {"complete", done == tasks.size()},
              {"baseline", spec_.baseline}, {"alpha", spec_.alpha},
              {"seeds", spec_.seeds},       {"correction", "Holm–Bonferroni over every test of this report"}};

  Document document;
  document.title = "Study " + spec_.name + " (" + generated + ")";
  document.sections.push_back(overview(done, tasks.size()));
  document.sections.push_back(findings());
  document.sections.push_back(pretraining());
  if (spec_.long_context) document.sections.push_back(long_context());
  if (spec_.needle) document.sections.push_back(needle());
  if (spec_.attention) document.sections.push_back(attention());
  if (spec_.recall) document.sections.push_back(recall());
  document.sections.push_back(learned_parameters());
  document.sections.push_back(reproduce());
  summary_["tests"] = family_.to_json();
  summary_["warnings"] = warnings_;

  const fs::path dir = spec_.out_dir;
  write_file_atomic((dir / "report.json").string(), summary_.dump(2) + "\n");
  write_file_atomic((dir / "report.md").string(), render_markdown(document));
  write_file_atomic((dir / "report.html").string(), render_html(document, dir.string()));
  for (const char* name : {"report.md", "report.html", "report.json"}) files_.push_back((dir / name).string());
  return {summary_, files_};
}

StudyReport write_study_report(const StudySpec& spec, const std::vector<StudyRun>& runs) {
  return StudyReportBuilder(spec, runs).build();
}

}  // namespace ssmax
