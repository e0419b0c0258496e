#include "report/compare_curves.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>

#include "config/normalizer_kind.h"
#include "report/plot.h"
#include "report/stats.h"
#include "util/files.h"

namespace ssmax {
namespace fs = std::filesystem;

namespace {

// printf's %.<precision>g: as short as the value allows.
std::string general_number(double v, int precision) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.*g", precision, v);
  return text;
}

const char* axis_label(XAxis axis) {
  return axis == XAxis::Step ? "step" : axis == XAxis::Tokens ? "tokens" : "training time (seconds)";
}

// A variant's curves of the metric against the chosen x, smoothed, aligned over its seeds.
struct VariantCurves {
  AlignedCurve aligned;
  size_t runs = 0;  // runs with the metric behind `aligned`; 0 when none has it (and `aligned` is empty)
};

std::vector<VariantCurves> variant_curves(const CompareOptions& o, XAxis axis, const std::vector<RunData>& runs,
                                          const std::vector<Variant>& variants) {
  std::vector<VariantCurves> result;
  for (const auto& variant : variants) {
    std::vector<Curve> curves;
    for (size_t r : variant.runs)
      if (Curve c = metric_curve(runs[r], o.metric, axis); !c.x.empty()) curves.push_back(ema_smooth(c, o.smooth));
    result.push_back({curves.empty() ? AlignedCurve{} : align_curves(curves), curves.size()});
  }
  return result;
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

// One panel: a line and band per variant in the variant's colour, with its events as markers.
Figure loss_figure(const CompareOptions& o, XAxis axis, const std::vector<RunData>& runs,
                   const std::vector<Variant>& variants, const std::vector<VariantCurves>& curves,
                   const std::vector<std::string>& legend_labels) {
  Figure loss;
  loss.title = o.metric + " by variant";
  loss.note = "line: mean over seeds; band: min–max over seeds (±1 std with ≥3 seeds)" +
              (o.smooth > 0 ? "; EMA smoothing " + general_number(o.smooth, 3) + " (debiased)" : std::string());
  PlotPanel panel{"",
                  axis_label(axis),
                  (o.metric == "val_loss" ? "validation" : "training") + std::string(" loss (nats/token)"),
                  o.log_x,
                  {},
                  {}};
  bool some_partial = false;
  for (size_t v = 0; v < variants.size(); ++v) {
    const auto events = variant_events(variants[v], runs, axis, v);
    panel.markers.insert(panel.markers.end(), events.begin(), events.end());
    if (curves[v].runs == 0) continue;
    const AlignedCurve& a = curves[v].aligned;
    const int all = static_cast<int>(curves[v].runs);
    panel.series.push_back(band_series(a, curves[v].runs, variants[v].runs.size() >= 3, legend_labels[v], v));
    // The note explains the dashes band_series draws where some of the variant's seeds have ended.
    some_partial |=
        std::find(a.n.begin(), a.n.end(), all) != a.n.end() && *std::min_element(a.n.begin(), a.n.end()) < all;
  }
  if (some_partial) loss.note += "; dashed: not every seed reaches that far";
  loss.panels.push_back(panel);
  return loss;
}

// A learned parameter's layer over a variant's seeds: the mean over heads, with a band from the smallest
// to the largest head (each averaged over seeds); nothing when no run recorded that layer.
std::optional<PlotSeries> layer_series(const std::string& param, size_t layer, const Variant& variant,
                                       const std::vector<RunData>& runs, XAxis axis) {
  std::vector<Curve> means, lows, highs;
  for (size_t r : variant.runs) {
    std::vector<std::pair<double, double>> m, lo, hi;
    for (const auto& rec : runs[r].records) {
      const auto& values = rec.parameter(param);
      if (values.size() <= layer || values[layer].empty()) continue;
      const auto& heads = values[layer];
      m.emplace_back(x_of(rec, axis), mean(heads));
      lo.emplace_back(x_of(rec, axis), *std::min_element(heads.begin(), heads.end()));
      hi.emplace_back(x_of(rec, axis), *std::max_element(heads.begin(), heads.end()));
    }
    if (m.empty()) continue;
    means.push_back(make_curve(m)), lows.push_back(make_curve(lo)), highs.push_back(make_curve(hi));
  }
  if (means.empty()) return std::nullopt;
  const AlignedCurve am = align_curves(means), alo = align_curves(lows), ahi = align_curves(highs);
  PlotSeries s{"layer " + std::to_string(layer), am.x, am.mean, {}, {}, {}, layer};
  for (size_t i = 0; i < am.x.size(); ++i) s.partial.push_back(static_cast<size_t>(am.n[i]) < means.size());
  for (double x : am.x) {
    s.lo.push_back(interpolate({alo.x, alo.mean}, x).value_or(NAN));
    s.hi.push_back(interpolate({ahi.x, ahi.mean}, x).value_or(NAN));
  }
  return s;
}

// Panels of a learned SSMax parameter (s or b), one per variant that has it, a line per layer.
Figure parameter_figure(const std::string& name, const std::vector<Variant>& variants,
                        const std::vector<std::string>& titles, const std::vector<RunData>& runs, XAxis axis,
                        bool log_x) {
  Figure figure;
  figure.title = std::string("learned ") + name + " per layer";
  figure.note = "line: mean over heads and seeds; band: smallest to largest head (each averaged over seeds)";
  figure.panel_height = 400;
  for (size_t vi = 0; vi < variants.size(); ++vi) {
    PlotPanel panel{titles[vi], axis_label(axis), name, log_x, {}, variant_events(variants[vi], runs, axis, 6)};
    size_t layers = 0;
    for (size_t r : variants[vi].runs)
      for (const auto& rec : runs[r].records) layers = std::max(layers, rec.parameter(name).size());
    for (size_t layer = 0; layer < layers; ++layer)
      if (auto s = layer_series(name, layer, variants[vi], runs, axis)) panel.series.push_back(std::move(*s));
    if (!panel.series.empty()) figure.panels.push_back(std::move(panel));
  }
  return figure;
}

std::string csv_field(const std::string& text) {  // variant names contain commas
  std::string quoted = "\"";
  for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

std::string csv_number(double v) { return std::isfinite(v) ? general_number(v, 9) : ""; }

std::string curves_csv(const std::vector<Variant>& variants, const std::vector<VariantCurves>& curves) {
  std::string csv = "x,variant,mean,std,min,max,n\n";
  for (size_t v = 0; v < variants.size(); ++v) {
    const AlignedCurve& a = curves[v].aligned;
    for (size_t i = 0; i < a.x.size(); ++i)
      csv += csv_number(a.x[i]) + "," + csv_field(variants[v].name) + "," + csv_number(a.mean[i]) + "," +
             csv_number(a.std[i]) + "," + csv_number(a.min[i]) + "," + csv_number(a.max[i]) + "," +
             std::to_string(a.n[i]) + "\n";
  }
  return csv;
}

}  // namespace

std::vector<std::string> write_curve_files(const CompareOptions& o, XAxis axis, const std::vector<RunData>& runs,
                                           const std::vector<Variant>& variants,
                                           const std::vector<std::string>& legend_labels) {
  auto out = [&](const std::string& file) { return (fs::path(o.out_dir) / file).string(); };
  std::vector<std::string> files;
  auto add_files = [&](const std::vector<std::string>& written) {
    files.insert(files.end(), written.begin(), written.end());
  };

  const std::vector<VariantCurves> curves = variant_curves(o, axis, runs, variants);
  const Figure loss = loss_figure(o, axis, runs, variants, curves, legend_labels);
  if (!loss.panels.front().series.empty()) add_files(write_figure(loss, out("loss")));
  for (const char* name : kNormalizerParameters) {
    const Figure figure = parameter_figure(name, variants, legend_labels, runs, axis, o.log_x);
    if (!figure.panels.empty()) add_files(write_figure(figure, out(name)));
  }
  write_file_atomic(out("curves.csv"), curves_csv(variants, curves));
  files.push_back(out("curves.csv"));
  return files;
}

}  // namespace ssmax
