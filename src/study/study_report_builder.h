#pragma once
// The report's assembly, shared by study_report.cpp (pretraining, long context, needle),
// study_report_sections.cpp (attention, learned parameters, reproduction, overview, findings, files) and
// study_report_scalings.cpp (the rows of inference-only scalings, the recall task). Internal to src/study.
#include <cmath>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "report/document.h"
#include "study/study_comparisons.h"
#include "study/study_report.h"
#include "study/study_results.h"

namespace ssmax {

struct PlotSeries;

// Exact-match successes of one variant pooled over its seeds, per [depth][length].
struct PooledNeedle {
  std::vector<std::vector<double>> successes, trials;
  double beyond_successes = 0, beyond_trials = 0;
  std::vector<double> beyond_per_seed;  // each seed's mean rate over the cells beyond the training length
  // [length][seed]: each seed's rate at that length, mean over depths. The seed is the unit of the intervals: the
  // same needles recur in every cell and every seed, so pooled trials are not independent draws.
  std::vector<std::vector<double>> per_seed_by_length;
  int64_t block_size = 0;
  bool any = false;
};

class StudyReportBuilder {
 public:
  StudyReportBuilder(const StudySpec& spec, const std::vector<StudyRun>& runs);

  StudyReport build();

 private:
  using Getter = std::function<std::optional<double>(const RunResults&)>;

  // A variant's values over its seeds; runs without the value are left out.
  std::vector<double> values(size_t variant, const Getter& get) const {
    std::vector<double> out;
    for (size_t r = 0; r < runs_.size(); ++r)
      if (runs_[r].variant == variant)
        if (const auto value = get(results_[r]); value && std::isfinite(*value)) out.push_back(*value);
    return out;
  }
  static Getter final_val() {
    return [](const RunResults& r) { return r.trained ? r.final_val_loss : std::nullopt; };
  }
  static Getter long_context_loss(double scale, int64_t length, int scaling = -1) {
    return [=](const RunResults& r) -> std::optional<double> {
      const auto scaled = r.long_context.find(scaling);
      if (scaled == r.long_context.end()) return std::nullopt;
      const auto s = scaled->second.find(scale);
      if (s == scaled->second.end() || !s->second.count(length)) return std::nullopt;
      return s->second.at(length);
    };
  }
  PooledNeedle pool_needle(size_t variant) const;
  std::string save(const std::string& stem, const std::function<std::vector<std::string>(const std::string&)>& write);
  PlotSeries mean_std_series(size_t variant, const std::vector<double>& x, const std::vector<std::vector<double>>& ys);

  // A row of the long-context and recall sections: a variant's models as trained (scaling -1) or with one of the
  // study's scalings applied at evaluation (study_report_scalings.cpp).
  struct EvalArm {
    size_t variant;
    int scaling;
    std::string name;  // the variant's, or "<variant>+<scaling>"
  };
  std::vector<EvalArm> arms() const;
  bool differ_in_normalizer_only(size_t a, size_t b) const;
  // Adds to the family, for each x: every arm against the baseline as trained, then every normalizer trained in
  // against every inference-only scaling on a model that differs from it in the normalizer alone.
  using ArmGetter = std::function<std::vector<double>(const EvalArm&, int64_t x)>;
  void add_arm_comparisons(const std::string& topic_prefix, const std::vector<int64_t>& xs, const Comparison& kind,
                           const ArmGetter& get, std::vector<size_t>& ids);
  std::vector<double> recall_values(const EvalArm& arm, int64_t length, bool mass) const;
  std::pair<std::vector<int64_t>, int64_t> recall_lengths() const;

  void plan_comparisons();  // every test of the family, before any verdict
  DocumentSection overview(size_t done, size_t total) const;
  DocumentSection findings() const;
  DocumentSection pretraining();
  DocumentSection long_context();
  DocumentSection needle();
  DocumentSection attention();
  DocumentSection recall();
  DocumentSection learned_parameters() const;
  DocumentSection reproduce() const;

  const StudySpec& spec_;
  const std::vector<StudyRun>& runs_;
  std::vector<std::string> warnings_;
  std::vector<RunResults> results_;
  std::vector<std::string> names_;
  mutable std::vector<nlohmann::json> configs_without_normalizer_;  // per variant (differ_in_normalizer_only)
  size_t base_ = 0;
  ComparisonFamily family_;
  std::vector<size_t> training_tests_, long_context_tests_, needle_tests_, recall_tests_;
  std::vector<PooledNeedle> needles_;
  nlohmann::json summary_;
  std::vector<std::string> files_;
  std::vector<std::pair<std::string, std::string>> attention_figures_;  // PNG path, caption
};

}  // namespace ssmax
