#include "report/compare.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>

#include "report/compare_curves.h"
#include "report/run_data.h"
#include "report/stats.h"
#include "util/arg_checks.h"
#include "util/errors.h"
#include "util/files.h"

namespace ssmax {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

json num(double v) { return std::isfinite(v) ? json(v) : json(); }  // NaN/inf → null

template <typename... Args>
std::string format(const char* pattern, Args... args) {
  char buffer[256];
  std::snprintf(buffer, sizeof(buffer), pattern, args...);
  return buffer;
}

// Pads to `width` characters (not bytes: "±" is two bytes in UTF-8).
std::string pad(const std::string& text, size_t width) {
  size_t chars = 0;
  for (unsigned char c : text) chars += (c & 0xC0) != 0x80;
  return text + std::string(width > chars ? width - chars : 0, ' ');
}

// Values of one quantity over the runs of a variant.
struct Stat {
  std::vector<double> values;
  double mean() const { return ssmax::mean(values); }
  double std() const { return sample_std(values); }
  std::string text(const char* number = "%.4f") const {
    if (values.empty()) return "n/a";
    if (values.size() == 1) return format(number, mean());
    return format(number, mean()) + " ± " + format(number, std());
  }
  json to_json() const {
    return {{"mean", num(mean())}, {"std", num(std())}, {"n", values.size()}, {"values", values}};
  }
};

struct VariantStats {
  Stat final_value, best, tokens_per_s;
  std::vector<Stat> at_steps;  // one per common step
  bool in_progress = false;
  std::vector<std::string> missing_metric;  // runs without a single record of the metric
};

// The final values of variants a and b (a < b) compared.
struct PairTest {
  size_t a, b;
  WelchResult welch;
};

// The numbers of the tables and summary.json, from the raw metric against steps: only the plotted curves
// are smoothed.
struct Statistics {
  std::vector<double> steps;           // the common steps the table has a column for
  std::vector<VariantStats> variants;  // parallel to the variants
  std::vector<PairTest> pairs;
};

// Warnings go into the report and to the log; load_run and check_same_dataset only append to the list.
void log_warnings_from(const std::vector<std::string>& warnings, size_t first) {
  for (size_t i = first; i < warnings.size(); ++i) spdlog::warn("{}", warnings[i]);
}

// The one check of the options, before anything is read; returns the x axis they name.
XAxis check_options(const CompareOptions& o) {
  if (o.metric != "val_loss" && o.metric != "train_loss")
    throw UsageError("--metric: '" + o.metric + "' is not one of val_loss, train_loss");
  const std::map<std::string, XAxis> axes = {{"step", XAxis::Step}, {"tokens", XAxis::Tokens}, {"time", XAxis::Time}};
  if (!axes.count(o.x_axis)) throw UsageError("--x: '" + o.x_axis + "' is not one of step, tokens, time");
  if (!(o.smooth >= 0 && o.smooth < 1)) throw UsageError("--smooth: " + format("%g", o.smooth) + " is not in [0, 1)");
  if (o.run_dirs.empty()) throw UsageError("compare: name at least one run directory");
  check_distinct("runs", o.run_dirs, true);
  if (o.out_dir.empty()) throw UsageError("--out: name the report directory");
  check_out_dir("--out", o.out_dir);
  return axes.at(o.x_axis);
}

// The usable runs among the directories given, all trained on the same data (unless forced).
std::vector<RunData> load_runs(const CompareOptions& o, std::vector<std::string>& warnings) {
  const size_t first = warnings.size();
  std::vector<RunData> runs;
  // A path that is not there is a typo, not a run to leave out (a glob like runs/* never names one); directories
  // that are not runs, or runs without records yet, are skipped with a warning.
  for (const auto& dir : o.run_dirs)
    if (!fs::exists(dir)) throw UsageError("compare: " + dir + ": no such run directory");
  for (const auto& dir : o.run_dirs)
    if (auto run = load_run(dir, warnings)) runs.push_back(std::move(*run));
  log_warnings_from(warnings, first);
  if (runs.empty())
    throw UsageError(format("compare: none of the %zu directories given is a usable run", o.run_dirs.size()));
  const size_t checked = warnings.size();
  check_same_dataset(runs, o.force, warnings);
  log_warnings_from(warnings, checked);
  return runs;
}

// Each run's metric against steps; empty for runs without it.
std::vector<Curve> step_curves(const std::vector<RunData>& runs, const std::string& metric,
                               std::vector<std::string>& warnings) {
  std::vector<Curve> by_step;
  std::string missing;
  for (const auto& run : runs) {
    by_step.push_back(metric_curve(run, metric, XAxis::Step));
    if (by_step.back().x.empty()) missing += (missing.empty() ? "" : ", ") + run.label();
  }
  if (!missing.empty()) {
    warnings.push_back("no " + metric + " records in " + missing + "; left out of the " + metric +
                       " statistics and plot");
    log_warnings_from(warnings, warnings.size() - 1);
  }
  return by_step;
}

// 25/50/75/100% of the shortest curve's last step, snapped to that curve's own steps: every run with the
// metric reaches them, so each column compares all of them.
std::vector<double> common_steps(const std::vector<Curve>& by_step) {
  std::vector<double> steps;
  const Curve* shortest = nullptr;
  for (const auto& c : by_step)
    if (!c.x.empty() && (!shortest || c.x.back() < shortest->x.back())) shortest = &c;
  if (!shortest) return steps;
  for (double fraction : {0.25, 0.5, 0.75, 1.0}) {
    const double target = fraction * shortest->x.back();
    double best = shortest->x.front();
    for (double x : shortest->x)
      if (std::fabs(x - target) < std::fabs(best - target)) best = x;
    if (std::find(steps.begin(), steps.end(), best) == steps.end()) steps.push_back(best);
  }
  return steps;
}

VariantStats stats_of(const Variant& variant, const std::vector<RunData>& runs, const std::vector<Curve>& by_step,
                      const std::vector<double>& steps) {
  VariantStats s;
  s.at_steps.resize(steps.size());
  for (size_t r : variant.runs) {
    s.in_progress |= runs[r].in_progress;
    Stat speed;
    for (const auto& rec : runs[r].records)
      if (rec.tokens_per_s) speed.values.push_back(*rec.tokens_per_s);
    if (!speed.values.empty()) s.tokens_per_s.values.push_back(speed.mean());
    const Curve& c = by_step[r];
    if (c.x.empty()) {
      s.missing_metric.push_back(runs[r].label());
      continue;
    }
    s.final_value.values.push_back(c.y.back());  // an unfinished run: its latest value
    s.best.values.push_back(*std::min_element(c.y.begin(), c.y.end()));
    for (size_t k = 0; k < steps.size(); ++k)
      if (auto y = interpolate(c, steps[k])) s.at_steps[k].values.push_back(*y);
  }
  return s;
}

Statistics statistics(const std::vector<Variant>& variants, const std::vector<RunData>& runs,
                      const std::vector<Curve>& by_step) {
  Statistics stats;
  stats.steps = common_steps(by_step);
  for (const auto& variant : variants) stats.variants.push_back(stats_of(variant, runs, by_step, stats.steps));
  const auto& v = stats.variants;
  for (size_t a = 0; a < v.size(); ++a)
    for (size_t b = a + 1; b < v.size(); ++b)
      stats.pairs.push_back({a, b, welch_t_test(v[a].final_value.values, v[b].final_value.values)});
  return stats;
}

std::string display_name(const Variant& v, const VariantStats& s) {
  return v.name + (s.in_progress ? " (in progress)" : "");
}

std::vector<std::string> legend_labels(const std::vector<Variant>& variants, const Statistics& stats) {
  std::vector<std::string> labels;
  for (size_t v = 0; v < variants.size(); ++v) {
    const size_t seeds = variants[v].runs.size();
    labels.push_back(variants[v].name + format(" [%zu seed%s]", seeds, seeds == 1 ? "" : "s") +
                     (stats.variants[v].in_progress ? " (in progress)" : ""));
  }
  return labels;
}

// One row per variant: final, best and the metric at the common steps, then the throughput.
std::string variant_table(const std::string& metric, const std::vector<Variant>& variants,
                          const std::vector<VariantStats>& stats, const std::vector<double>& steps, size_t name_width) {
  std::string t = metric + " by variant (mean ± sample std over seeds; final = last record)\n";
  t += pad("variant", name_width) + "  seeds  " + pad("final", 18) + "  " + pad("best", 18);
  for (double step : steps) t += "  " + pad(format("@%.0f", step), 8);
  t += "  tokens/s\n";
  for (size_t v = 0; v < variants.size(); ++v) {
    const auto& s = stats[v];
    t += pad(display_name(variants[v], s), name_width) + "  " + pad(format("%zu", variants[v].runs.size()), 5) + "  " +
         pad(s.final_value.text(), 18) + "  " + pad(s.best.text(), 18);
    for (const auto& at : s.at_steps) t += "  " + pad(at.values.empty() ? "n/a" : format("%.4f", at.mean()), 8);
    t += "  " + (s.tokens_per_s.values.empty() ? std::string("n/a") : format("%.0f", s.tokens_per_s.mean())) + "\n";
  }
  return t;
}

std::string pairwise_table(const std::string& metric, const std::vector<Variant>& variants,
                           const std::vector<PairTest>& pairs, size_t name_width) {
  if (pairs.empty()) return "";
  std::string t = "\npairwise: difference of final " + metric + " means (B − A), Welch t-test, two-sided p\n";
  t += pad("A", name_width) + "  " + pad("B", name_width) + "  B − A     t       df      p\n";
  for (const auto& [a, b, w] : pairs)
    t += pad(variants[a].name, name_width) + "  " + pad(variants[b].name, name_width) + "  " +
         pad(std::isfinite(w.diff) ? format("%+.4f", w.diff) : "n/a", 8) + "  " +
         pad(w.t ? format("%.3f", *w.t) : "n/a", 6) + "  " + pad(w.df ? format("%.2f", *w.df) : "n/a", 6) + "  " +
         (w.p ? format("%.4f", *w.p) : std::string("n/a (needs ≥2 runs with spread per variant)")) + "\n";
  return t;
}

std::string run_list(const std::vector<Variant>& variants, const std::vector<RunData>& runs) {
  std::string t = "\nruns\n";
  for (const auto& v : variants) {
    t += "  " + v.name + ":\n";
    for (size_t r : v.runs)
      t += "    " + runs[r].label() +
           format(" (seed %s, step %lld/%lld%s)\n", runs[r].config.value("seed", json()).dump().c_str(),
                  static_cast<long long>(runs[r].last_step), static_cast<long long>(runs[r].max_steps),
                  runs[r].in_progress ? ", in progress" : "");
  }
  return t;
}

json variant_json(const Variant& variant, const VariantStats& s, const std::vector<RunData>& runs,
                  const std::vector<double>& steps) {
  json run_list = json::array(), seeds = json::array(), at = json::array();
  for (size_t r : variant.runs) {
    seeds.push_back(runs[r].config.value("seed", json()));
    run_list.push_back({{"dir", runs[r].label()},
                        {"seed", seeds.back()},
                        {"last_step", runs[r].last_step},
                        {"max_steps", runs[r].max_steps},
                        {"in_progress", runs[r].in_progress}});
  }
  for (size_t k = 0; k < steps.size(); ++k) {
    json entry = s.at_steps[k].to_json();
    entry["step"] = std::llround(steps[k]);
    at.push_back(entry);
  }
  return {{"name", variant.name},
          {"runs", run_list},
          {"seeds", seeds},
          {"in_progress", s.in_progress},
          {"final", s.final_value.to_json()},
          {"best", s.best.to_json()},
          {"at_steps", at},
          {"tokens_per_s", s.tokens_per_s.to_json()},
          {"missing_metric", s.missing_metric}};
}

std::string tables_text(const std::string& metric, const std::vector<Variant>& variants,
                        const std::vector<RunData>& runs, const Statistics& stats) {
  size_t name_width = std::string("variant").size();
  for (size_t v = 0; v < variants.size(); ++v)
    name_width = std::max(name_width, display_name(variants[v], stats.variants[v]).size());
  return variant_table(metric, variants, stats.variants, stats.steps, name_width) +
         pairwise_table(metric, variants, stats.pairs, name_width) + run_list(variants, runs);
}

json summary_json(const CompareOptions& o, const std::vector<Variant>& variants, const std::vector<RunData>& runs,
                  const Statistics& stats, const std::vector<std::string>& warnings) {
  json variant_list = json::array(), comparisons = json::array();
  for (size_t v = 0; v < variants.size(); ++v)
    variant_list.push_back(variant_json(variants[v], stats.variants[v], runs, stats.steps));
  for (const auto& [a, b, w] : stats.pairs)
    comparisons.push_back({{"a", variants[a].name},
                           {"b", variants[b].name},
                           {"diff", num(w.diff)},
                           {"t", w.t ? num(*w.t) : json()},
                           {"df", w.df ? num(*w.df) : json()},
                           {"p", w.p ? num(*w.p) : json()}});
  return {{"metric", o.metric},
          {"x", o.x_axis},
          {"log_x", o.log_x},
          {"smooth", o.smooth},
          {"smoothing", "EMA, debiased like TensorBoard; curves only"},
          {"variants", variant_list},
          {"comparisons", comparisons},
          {"warnings", warnings}};
}

// Figures from an earlier report go first: one not drawn this time (no SSMax run) must not stay behind.
// Only our own file names are removed or written: the directory may hold other files.
void prepare_report_dir(const std::string& dir) {
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) throw RuntimeFailure(dir + ": cannot create the report directory (" + error.message() + ")");
  // summary.json goes last: a report cut short (a signal, a full disk) has none, never an old one beside new plots.
  for (const char* stale : {"summary.json", "curves.csv", "loss.png", "loss.svg", "s.png", "s.svg", "b.png", "b.svg"})
    fs::remove(fs::path(dir) / stale, error);
}

}  // namespace

CompareReport compare_runs(const CompareOptions& o) {
  const XAxis axis = check_options(o);
  CompareReport report;
  const std::vector<RunData> runs = load_runs(o, report.warnings);
  const std::vector<Variant> variants = group_variants(runs);
  const Statistics stats = statistics(variants, runs, step_curves(runs, o.metric, report.warnings));
  report.text = tables_text(o.metric, variants, runs, stats);

  prepare_report_dir(o.out_dir);
  report.files = write_curve_files(o, axis, runs, variants, legend_labels(variants, stats));
  report.summary = summary_json(o, variants, runs, stats, report.warnings);
  const std::string summary_path = (fs::path(o.out_dir) / "summary.json").string();
  write_file_atomic(summary_path, report.summary.dump(2) + "\n");
  report.files.push_back(summary_path);
  return report;
}

}  // namespace ssmax
