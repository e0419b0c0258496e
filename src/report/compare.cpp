#include "report/compare.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>

#include "report/plot.h"
#include "report/run_data.h"
#include "report/stats.h"
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
  json to_json() const { return {{"mean", num(mean())}, {"std", num(std())}, {"n", values.size()}, {"values", values}}; }
};

struct VariantStats {
  Stat final_value, best, tokens_per_s;
  std::vector<Stat> at_steps;  // one per common step
  bool in_progress = false;
  std::vector<std::string> missing_metric;  // runs without a single record of the metric
};

const char* axis_label(XAxis axis) {
  return axis == XAxis::Step ? "step" : axis == XAxis::Tokens ? "tokens" : "training time (seconds)";
}

std::string legend_label(const Variant& v, const VariantStats& s) {
  return v.name + format(" [%zu seed%s]", v.runs.size(), v.runs.size() == 1 ? "" : "s") +
         (s.in_progress ? " (in progress)" : "");
}

// A variant's band: ±1 std with three or more seeds (where at least two cover the point), else min–max.
// Points with fewer than `runs` runs behind them (one ended early) are drawn dashed.
PlotSeries band_series(const AlignedCurve& a, size_t runs, bool std_band, std::string label, size_t color) {
  PlotSeries s{std::move(label), a.x, a.mean, {}, {}, {}, color};
  for (size_t i = 0; i < a.x.size(); ++i) {
    s.partial.push_back(static_cast<size_t>(a.n[i]) < runs);
    const bool use_std = std_band && a.n[i] >= 2;
    s.lo.push_back(use_std ? a.mean[i] - a.std[i] : a.min[i]);
    s.hi.push_back(use_std ? a.mean[i] + a.std[i] : a.max[i]);
  }
  return s;
}

// Event records (a normalizer switch) of a variant's runs: one marker per distinct (step, text), at the
// mean x of the seeds (their times differ on a time axis), so seeds do not stack up labels.
std::vector<PlotMarker> variant_events(const Variant& v, const std::vector<RunData>& runs, XAxis axis, size_t color) {
  std::map<std::pair<int64_t, std::string>, std::vector<double>> xs;
  for (size_t r : v.runs)
    for (const auto& rec : runs[r].records)
      if (!rec.event.empty()) xs[{rec.step, rec.event}].push_back(x_of(rec, axis));
  std::vector<PlotMarker> markers;
  for (const auto& [key, x] : xs) markers.push_back({mean(x), key.second, color});
  return markers;
}

// Panels of a learned SSMax parameter (s or b), one per variant that has it: per layer the mean over heads
// (averaged over seeds) with a band from the smallest to the largest head (each averaged over seeds).
Figure parameter_figure(const char* name, std::vector<std::vector<double>> MetricsRecord::*param,
                        const std::vector<Variant>& variants, const std::vector<std::string>& titles,
                        const std::vector<RunData>& runs, XAxis axis, bool log_x) {
  Figure figure;
  figure.title = format("learned %s per layer", name);
  figure.note = "line: mean over heads and seeds; band: smallest to largest head (each averaged over seeds)";
  figure.panel_height = 400;
  for (size_t vi = 0; vi < variants.size(); ++vi) {
    PlotPanel panel{titles[vi], axis_label(axis), name, log_x, {}, variant_events(variants[vi], runs, axis, 6)};
    size_t layers = 0;
    for (size_t r : variants[vi].runs)
      for (const auto& rec : runs[r].records) layers = std::max(layers, (rec.*param).size());
    for (size_t layer = 0; layer < layers; ++layer) {
      std::vector<Curve> means, lows, highs;
      for (size_t r : variants[vi].runs) {
        std::vector<std::pair<double, double>> m, lo, hi;
        for (const auto& rec : runs[r].records) {
          if ((rec.*param).size() <= layer || (rec.*param)[layer].empty()) continue;
          const auto& heads = (rec.*param)[layer];
          m.emplace_back(x_of(rec, axis), mean(heads));
          lo.emplace_back(x_of(rec, axis), *std::min_element(heads.begin(), heads.end()));
          hi.emplace_back(x_of(rec, axis), *std::max_element(heads.begin(), heads.end()));
        }
        if (m.empty()) continue;
        means.push_back(make_curve(m)), lows.push_back(make_curve(lo)), highs.push_back(make_curve(hi));
      }
      if (means.empty()) continue;
      const AlignedCurve am = align_curves(means), alo = align_curves(lows), ahi = align_curves(highs);
      PlotSeries s{format("layer %zu", layer), am.x, am.mean, {}, {}, {}, layer};
      for (size_t i = 0; i < am.x.size(); ++i) s.partial.push_back(static_cast<size_t>(am.n[i]) < means.size());
      for (double x : am.x) {
        s.lo.push_back(interpolate({alo.x, alo.mean}, x).value_or(NAN));
        s.hi.push_back(interpolate({ahi.x, ahi.mean}, x).value_or(NAN));
      }
      panel.series.push_back(std::move(s));
    }
    if (!panel.series.empty()) figure.panels.push_back(std::move(panel));
  }
  return figure;
}

std::string csv_field(const std::string& text) {  // variant names contain commas
  std::string quoted = "\"";
  for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

std::string csv_number(double v) { return std::isfinite(v) ? format("%.9g", v) : ""; }

}  // namespace

CompareReport compare_runs(const CompareOptions& o) {
  if (o.metric != "val_loss" && o.metric != "train_loss")
    throw UsageError("--metric: '" + o.metric + "' is not one of val_loss, train_loss");
  const std::map<std::string, XAxis> axes = {{"step", XAxis::Step}, {"tokens", XAxis::Tokens}, {"time", XAxis::Time}};
  if (!axes.count(o.x_axis)) throw UsageError("--x: '" + o.x_axis + "' is not one of step, tokens, time");
  const XAxis axis = axes.at(o.x_axis);
  if (!(o.smooth >= 0 && o.smooth < 1)) throw UsageError("--smooth: " + format("%g", o.smooth) + " is not in [0, 1)");
  if (o.run_dirs.empty()) throw UsageError("compare: name at least one run directory");
  if (o.out_dir.empty()) throw UsageError("--out: name the report directory");
  if (fs::exists(o.out_dir) && !fs::is_directory(o.out_dir))
    throw UsageError("--out " + o.out_dir + ": exists and is not a directory");

  CompareReport report;
  size_t logged = 0;
  auto log_warnings = [&] {
    for (; logged < report.warnings.size(); ++logged) spdlog::warn("{}", report.warnings[logged]);
  };
  std::vector<RunData> runs;
  for (const auto& dir : o.run_dirs)
    if (auto run = load_run(dir, report.warnings)) runs.push_back(std::move(*run));
  log_warnings();
  if (runs.empty()) throw UsageError(format("compare: none of the %zu directories given is a usable run", o.run_dirs.size()));
  check_same_dataset(runs, o.force, report.warnings);
  log_warnings();
  const std::vector<Variant> variants = group_variants(runs);

  // Statistics use the raw metric against steps; only the plotted curves are smoothed.
  std::vector<Curve> by_step;
  std::vector<std::string> missing;
  for (const auto& run : runs) {
    by_step.push_back(metric_curve(run, o.metric, XAxis::Step));
    if (by_step.back().x.empty()) missing.push_back(run.label());
  }
  if (!missing.empty()) {
    std::string names;
    for (const auto& m : missing) names += (names.empty() ? "" : ", ") + m;
    report.warnings.push_back("no " + o.metric + " records in " + names + "; left out of the " + o.metric +
                              " statistics and plot");
    log_warnings();
  }
  // Common steps: 25/50/75/100% of the shortest curve's last step, snapped to that curve's own steps.
  std::vector<double> common_steps;
  const Curve* shortest = nullptr;
  for (const auto& c : by_step)
    if (!c.x.empty() && (!shortest || c.x.back() < shortest->x.back())) shortest = &c;
  if (shortest)
    for (double fraction : {0.25, 0.5, 0.75, 1.0}) {
      const double target = fraction * shortest->x.back();
      double best = shortest->x.front();
      for (double x : shortest->x)
        if (std::fabs(x - target) < std::fabs(best - target)) best = x;
      if (std::find(common_steps.begin(), common_steps.end(), best) == common_steps.end()) common_steps.push_back(best);
    }

  std::vector<VariantStats> stats(variants.size());
  for (size_t v = 0; v < variants.size(); ++v) {
    auto& s = stats[v];
    s.at_steps.resize(common_steps.size());
    for (size_t r : variants[v].runs) {
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
      for (size_t k = 0; k < common_steps.size(); ++k)
        if (auto y = interpolate(c, common_steps[k])) s.at_steps[k].values.push_back(*y);
    }
  }

  // The table.
  size_t name_width = 7;
  for (size_t v = 0; v < variants.size(); ++v)
    name_width = std::max(name_width, variants[v].name.size() + (stats[v].in_progress ? 14 : 0));
  std::string& t = report.text;
  t += o.metric + " by variant (mean ± sample std over seeds; final = last record)\n";
  t += pad("variant", name_width) + "  seeds  " + pad("final", 18) + "  " + pad("best", 18);
  for (double step : common_steps) t += "  " + pad(format("@%.0f", step), 8);
  t += "  tokens/s\n";
  for (size_t v = 0; v < variants.size(); ++v) {
    const auto& s = stats[v];
    t += pad(variants[v].name + (s.in_progress ? " (in progress)" : ""), name_width) + "  " +
         pad(format("%zu", variants[v].runs.size()), 5) + "  " + pad(s.final_value.text(), 18) + "  " +
         pad(s.best.text(), 18);
    for (const auto& at : s.at_steps) t += "  " + pad(at.values.empty() ? "n/a" : format("%.4f", at.mean()), 8);
    t += "  " + (s.tokens_per_s.values.empty() ? std::string("n/a") : format("%.0f", s.tokens_per_s.mean())) + "\n";
  }
  json comparisons = json::array();
  if (variants.size() > 1) {
    t += "\npairwise: difference of final " + o.metric + " means (B − A), Welch t-test, two-sided p\n";
    t += pad("A", name_width) + "  " + pad("B", name_width) + "  B − A     t       df      p\n";
  }
  for (size_t a = 0; a < variants.size(); ++a)
    for (size_t b = a + 1; b < variants.size(); ++b) {
      const WelchResult w = welch_t_test(stats[a].final_value.values, stats[b].final_value.values);
      comparisons.push_back({{"a", variants[a].name}, {"b", variants[b].name}, {"diff", num(w.diff)},
                             {"t", w.t ? num(*w.t) : json()}, {"df", w.df ? num(*w.df) : json()},
                             {"p", w.p ? num(*w.p) : json()}});
      t += pad(variants[a].name, name_width) + "  " + pad(variants[b].name, name_width) + "  " +
           pad(std::isfinite(w.diff) ? format("%+.4f", w.diff) : "n/a", 8) + "  " +
           pad(w.t ? format("%.3f", *w.t) : "n/a", 6) + "  " + pad(w.df ? format("%.2f", *w.df) : "n/a", 6) + "  " +
           (w.p ? format("%.4f", *w.p) : std::string("n/a (needs ≥2 runs with spread per variant)")) + "\n";
    }
  t += "\nruns\n";
  for (const auto& v : variants) {
    t += "  " + v.name + ":\n";
    for (size_t r : v.runs)
      t += "    " + runs[r].label() + format(" (seed %s, step %lld/%lld%s)\n", runs[r].config.value("seed", json()).dump().c_str(),
                                             static_cast<long long>(runs[r].last_step),
                                             static_cast<long long>(runs[r].max_steps),
                                             runs[r].in_progress ? ", in progress" : "");
  }

  // Curves: each run's metric against the chosen x, smoothed, aligned over its variant's seeds.
  Figure loss;
  loss.title = o.metric + " by variant";
  loss.note = "line: mean over seeds; band: min–max over seeds (±1 std with ≥3 seeds)" +
              (o.smooth > 0 ? format("; EMA smoothing %.3g (debiased)", o.smooth) : std::string());
  PlotPanel panel{"", axis_label(axis), (o.metric == "val_loss" ? "validation" : "training") + std::string(" loss (nats/token)"),
                  o.log_x, {}, {}};
  std::string csv = "x,variant,mean,std,min,max,n\n";
  std::string partial_note;
  for (size_t v = 0; v < variants.size(); ++v) {
    std::vector<Curve> curves;
    for (size_t r : variants[v].runs)
      if (Curve c = metric_curve(runs[r], o.metric, axis); !c.x.empty()) curves.push_back(ema_smooth(c, o.smooth));
    const auto events = variant_events(variants[v], runs, axis, v);
    panel.markers.insert(panel.markers.end(), events.begin(), events.end());
    if (curves.empty()) continue;
    const AlignedCurve a = align_curves(curves);
    for (size_t i = 0; i < a.x.size(); ++i)
      csv += csv_number(a.x[i]) + "," + csv_field(variants[v].name) + "," + csv_number(a.mean[i]) + "," +
             csv_number(a.std[i]) + "," + csv_number(a.min[i]) + "," + csv_number(a.max[i]) + "," +
             std::to_string(a.n[i]) + "\n";
    panel.series.push_back(
        band_series(a, curves.size(), variants[v].runs.size() >= 3, legend_label(variants[v], stats[v]), v));
    if (std::find(a.n.begin(), a.n.end(), static_cast<int>(curves.size())) != a.n.end() &&
        *std::min_element(a.n.begin(), a.n.end()) < static_cast<int>(curves.size()))
      partial_note = "; dashed: not every seed reaches that far";
  }
  loss.note += partial_note;
  loss.panels.push_back(panel);

  // The report directory: only our own file names in it are removed or written.
  std::error_code error;
  fs::create_directories(o.out_dir, error);
  if (error) throw RuntimeFailure(o.out_dir + ": cannot create the report directory (" + error.message() + ")");
  for (const char* stale : {"loss.png", "loss.svg", "s.png", "s.svg", "b.png", "b.svg"})
    fs::remove(fs::path(o.out_dir) / stale, error);
  auto out = [&](const std::string& file) { return (fs::path(o.out_dir) / file).string(); };
  auto add_files = [&](const std::vector<std::string>& files) {
    report.files.insert(report.files.end(), files.begin(), files.end());
  };
  if (!panel.series.empty()) add_files(write_figure(loss, out("loss")));
  std::vector<std::string> titles;
  for (size_t v = 0; v < variants.size(); ++v) titles.push_back(legend_label(variants[v], stats[v]));
  const std::pair<const char*, std::vector<std::vector<double>> MetricsRecord::*> params[] = {{"s", &MetricsRecord::s},
                                                                                              {"b", &MetricsRecord::b}};
  for (const auto& [name, member] : params) {
    Figure figure = parameter_figure(name, member, variants, titles, runs, axis, o.log_x);
    if (!figure.panels.empty()) add_files(write_figure(figure, out(name)));
  }
  write_file_atomic(out("curves.csv"), csv);
  report.files.push_back(out("curves.csv"));

  json variant_list = json::array();
  for (size_t v = 0; v < variants.size(); ++v) {
    const auto& s = stats[v];
    json run_list = json::array(), seeds = json::array(), at = json::array();
    for (size_t r : variants[v].runs) {
      seeds.push_back(runs[r].config.value("seed", json()));
      run_list.push_back({{"dir", runs[r].label()}, {"seed", seeds.back()}, {"last_step", runs[r].last_step},
                          {"max_steps", runs[r].max_steps}, {"in_progress", runs[r].in_progress}});
    }
    for (size_t k = 0; k < common_steps.size(); ++k) {
      json entry = s.at_steps[k].to_json();
      entry["step"] = std::llround(common_steps[k]);
      at.push_back(entry);
    }
    variant_list.push_back({{"name", variants[v].name}, {"runs", run_list}, {"seeds", seeds},
                            {"in_progress", s.in_progress}, {"final", s.final_value.to_json()},
                            {"best", s.best.to_json()}, {"at_steps", at}, {"tokens_per_s", s.tokens_per_s.to_json()},
                            {"missing_metric", s.missing_metric}});
  }
  report.summary = {{"metric", o.metric}, {"x", o.x_axis}, {"log_x", o.log_x},
                    {"smooth", o.smooth}, {"smoothing", "EMA, debiased like TensorBoard; curves only"},
                    {"variants", variant_list}, {"comparisons", comparisons}, {"warnings", report.warnings}};
  write_file_atomic(out("summary.json"), report.summary.dump(2) + "\n");
  report.files.push_back(out("summary.json"));
  return report;
}

}  // namespace ssmax
