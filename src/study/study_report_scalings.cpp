// The report's rows of inference-only scalings (a variant's models with one of the study's scalings applied at
// evaluation: Qwen's logn, Llama 4's temperature, SSMax swapped in) and the tests that set a normalizer trained in
// against them; and the recall section: models trained on the recall task (data.task = "mqar") by context length —
// accuracy and attention on the right pair.
#include <algorithm>
#include <set>

#include "config/config.h"
#include "report/plot.h"
#include "study/study_report_builder.h"

namespace ssmax {
using json = nlohmann::json;

std::vector<StudyReportBuilder::EvalArm> StudyReportBuilder::arms() const {
  std::vector<EvalArm> out;
  for (size_t v = 0; v < names_.size(); ++v) out.push_back({v, -1, names_[v]});
  const auto& scalings = spec_.scalings;
  for (int s = 0; s < static_cast<int>(scalings.size()); ++s)
    for (size_t v = 0; v < names_.size(); ++v)
      if (std::count(scalings[s].variants.begin(), scalings[s].variants.end(), names_[v]))
        out.push_back({v, s, names_[v] + "+" + scalings[s].name});
  return out;
}

// Whether two variants train the same model apart from the attention normalizer (and seed, name, directory): the
// pairs whose trained-in normalizer and inference-only scaling answer the paper's question, unconfounded. Each
// variant's config is read once (a report asks this for every pair of rows).
bool StudyReportBuilder::differ_in_normalizer_only(size_t a, size_t b) const {
  if (configs_without_normalizer_.empty()) {
    configs_without_normalizer_.assign(names_.size(), json());
    for (const auto& run : runs_) {
      json& config = configs_without_normalizer_[run.variant];
      if (!config.is_null()) continue;
      config = config_to_json(load_config(spec_.config_path, run.overrides));
      config["model"].erase("attention");
      for (const char* key : {"name", "out_dir", "seed"}) config.erase(key);
    }
  }
  return configs_without_normalizer_[a] == configs_without_normalizer_[b];
}

void StudyReportBuilder::add_arm_comparisons(const std::string& topic_prefix, const std::vector<int64_t>& xs,
                                             const Comparison& kind, const ArmGetter& get, std::vector<size_t>& ids) {
  const auto all = arms();
  auto add = [&](const EvalArm& a, const EvalArm& b, int64_t x) {
    Comparison c = kind;
    c.topic = topic_prefix + std::to_string(x) + " tokens" + kind.topic;
    c.a = a.name, c.b = b.name;
    c.va = get(a, x), c.vb = get(b, x);
    c.paired = a.variant == b.variant;  // one variant's models, as trained and with a scaling
    ids.push_back(family_.add(c));
  };
  for (int64_t x : xs) {
    for (const auto& arm : all)
      if (!(arm.variant == base_ && arm.scaling < 0)) add(all[base_], arm, x);
    for (const auto& trained : all)
      if (trained.scaling < 0 && trained.variant != base_)
        for (const auto& scaled : all)
          if (scaled.scaling >= 0 && scaled.variant != trained.variant &&
              differ_in_normalizer_only(trained.variant, scaled.variant))
            add(scaled, trained, x);
  }
}

std::vector<double> StudyReportBuilder::recall_values(const EvalArm& arm, int64_t length, bool mass) const {
  return values(arm.variant, [&](const RunResults& r) -> std::optional<double> {
    const auto scaled = r.recall.find(arm.scaling);
    if (scaled == r.recall.end() || !scaled->second.count(length)) return std::nullopt;
    const RecallPoint& point = scaled->second.at(length);
    return mass ? point.best_head_mass : point.accuracy;
  });
}

// The lengths evaluated (the study's, or those the runs report) and the training length.
std::pair<std::vector<int64_t>, int64_t> StudyReportBuilder::recall_lengths() const {
  std::set<int64_t> lengths(spec_.recall->lengths.begin(), spec_.recall->lengths.end());
  int64_t block_size = 0;
  for (const auto& result : results_)
    for (const auto& [scaling, by_length] : result.recall)
      for (const auto& [length, point] : by_length) {
        if (spec_.recall->lengths.empty()) lengths.insert(length);
        block_size = point.block_size;
      }
  return {{lengths.begin(), lengths.end()}, block_size};
}

DocumentSection StudyReportBuilder::recall() {
  const auto arms = this->arms();
  const auto [lengths, block_size] = recall_lengths();
  DocumentSection section{"Recall by context length", {}};
  section.text("Models trained on multi-query associative recall (docs/recall.md), evaluated with " +
               std::to_string(spec_.recall->sequences) +
               " sequences per length; `+name` rows apply that scaling at evaluation only. Accuracy: answers right; "
               "attention: the mass a query puts on the pair it asks for, in the head that puts the most there. "
               "Mean ± std over seeds.");
  Figure figure;
  figure.title = "Recall by context length";
  figure.note = "mean over seeds, band ± one std; training length " + std::to_string(block_size);
  json out = json::object();
  for (bool mass : {false, true}) {
    const std::string what = mass ? "attention mass on the right pair (best head)" : "accuracy";
    DocumentTable table{"Recall " + what + " by length", {"length"}, {}};
    PlotPanel panel;
    panel.title = what;
    panel.x_label = "context length (tokens)";
    panel.y_label = what;
    panel.log_x = true;
    for (const auto& arm : arms) table.header.push_back(arm.name);
    for (size_t a = 0; a < arms.size(); ++a) {
      PlotSeries series;
      series.label = arms[a].name;
      series.color = a;
      for (int64_t length : lengths) {
        const auto vals = recall_values(arms[a], length, mass);
        out[mass ? "best_head_mass" : "accuracy"][std::to_string(length)][arms[a].name] = stat_json(vals);
        if (vals.empty()) continue;
        const double m = mean(vals), sd = vals.size() > 1 ? sample_std(vals) : 0;
        series.x.push_back(static_cast<double>(length));
        series.y.push_back(m);
        series.lo.push_back(m - sd);
        series.hi.push_back(m + sd);
      }
      panel.series.push_back(series);
    }
    for (int64_t length : lengths) {
      std::vector<std::string> row{std::to_string(length) + (length > block_size ? " *" : "")};
      for (const auto& arm : arms) row.push_back(mean_std_text(recall_values(arm, length, mass), 3));
      table.rows.push_back(row);
    }
    for (int64_t length : lengths) panel.x_ticks.push_back(static_cast<double>(length));
    if (block_size > 0) panel.markers.push_back({static_cast<double>(block_size), "training length", kMarkerColor});
    figure.panels.push_back(panel);
    section.add(table);
  }
  section.text("* beyond the training length.");
  summary_["recall"] = out;
  section.add(family_.table(recall_tests_, "Recall accuracy beyond the training length: differences"));
  section.figure(save("recall", [&](const std::string& stem) { return write_figure(figure, stem); }),
                 "Recall accuracy and attention on the right pair by context length.");
  return section;
}

}  // namespace ssmax
