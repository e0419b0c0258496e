#include "report/run_data.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <set>

#include "config/config.h"
#include "config/json_paths.h"
#include "report/stats.h"
#include "run/run_paths.h"
#include "util/errors.h"
#include "util/files.h"

namespace ssmax {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// The value at a dotted key, or null when absent.
json value_at(const json& root, const std::string& dotted) {
  const json* value = json_at(root, dotted);
  return value ? *value : json();
}

// A config value as a user would type it after --set: strings without quotes.
std::string value_text(const json& value) {
  if (value.is_null()) return "(unset)";
  if (value.is_string()) return value.get<std::string>();
  return value.dump();
}

}  // namespace

std::string RunData::label() const {
  std::string text = dir;
  while (text.size() > 1 && text.back() == '/') text.pop_back();
  return text;
}

std::optional<RunData> load_run(const std::string& dir, std::vector<std::string>& warnings) {
  RunData run;
  run.dir = dir;
  const std::string name = run.label();
  if (!fs::is_directory(dir)) {
    warnings.push_back(name + ": not a directory; skipped");
    return std::nullopt;
  }
  const RunPaths files(dir);
  for (const std::string& file : {files.config(), files.metrics()}) {
    if (!fs::is_regular_file(file)) {
      warnings.push_back(name + ": not a run directory (no " + fs::path(file).filename().string() + "); skipped");
      return std::nullopt;
    }
  }
  run.config = json::parse(read_file(files.config()), nullptr, false);
  if (run.config.is_discarded() || !run.config.is_object()) {
    warnings.push_back(name + "/config.json: not a JSON object; skipped");
    return std::nullopt;
  }
  MetricsFile metrics;
  try {
    metrics = read_metrics(files.metrics());
  } catch (const RuntimeFailure& e) {  // a damaged line in the middle: not something to guess around
    warnings.push_back(std::string(e.what()) + "; run skipped");
    return std::nullopt;
  }
  if (metrics.last_line_cut)
    warnings.push_back(name + "/metrics.jsonl: last line is cut off (run in progress or killed); using the " +
                       std::to_string(metrics.records.size()) + " records before it");
  if (metrics.records.empty()) {
    warnings.push_back(name + "/metrics.jsonl: no records yet; skipped");
    return std::nullopt;
  }
  run.records = std::move(metrics.records);
  for (const auto& r : run.records) run.last_step = std::max(run.last_step, r.step);
  const json max_steps = value_at(run.config, "train.max_steps");
  run.max_steps = max_steps.is_number_integer() ? max_steps.get<int64_t>() : 0;
  // train writes the final checkpoint's manifest last, so its presence means the run finished.
  run.in_progress = !fs::exists(files.manifest(run.max_steps));
  return run;
}

void check_same_dataset(const std::vector<RunData>& runs, bool force, std::vector<std::string>& warnings) {
  if (runs.empty()) return;
  const json first = runs[0].config.value("data", json::object());
  for (size_t i = 1; i < runs.size(); ++i) {
    const json other = runs[i].config.value("data", json::object());
    for (const auto& key : config_differences(first, other)) {
      // Where the cache lives and how its tokens are cut into files, not which tokens it holds.
      if (key == "dataset_dir" || key == "shard_tokens") continue;
      const std::string message = "runs " + runs[0].label() + " and " + runs[i].label() +
                                  " were trained on different data: data." + key + " is " +
                                  value_text(value_at(first, key)) + " vs " + value_text(value_at(other, key));
      if (!force) throw UsageError(message + " (pass --force to compare them anyway)");
      warnings.push_back(message + "; compared anyway (--force)");
    }
  }
}

std::vector<Variant> group_configs(const std::vector<json>& configs) {
  std::vector<RunData> runs(configs.size());
  for (size_t i = 0; i < configs.size(); ++i) runs[i].config = configs[i];
  return group_variants(runs);
}

std::vector<Variant> group_variants(const std::vector<RunData>& runs) {
  // Configs without the keys that differ between seeds of one experiment.
  std::vector<json> stripped;
  for (const auto& run : runs) {
    json c = run.config;
    for (const char* key : {"seed", "out_dir", "name"}) c.erase(key);
    stripped.push_back(std::move(c));
  }
  std::vector<Variant> variants;
  std::vector<size_t> representative;  // index of each variant's first run
  for (size_t i = 0; i < runs.size(); ++i) {
    size_t v = 0;
    while (v < variants.size() && stripped[representative[v]] != stripped[i]) ++v;
    if (v == variants.size()) {
      variants.push_back({});
      representative.push_back(i);
    }
    variants[v].runs.push_back(i);
  }
  if (variants.size() == 1) {
    // The config name; when seeds are named "x-s1", "x-s2", their common prefix up to a separator: "x".
    const std::string first = runs[0].config.value("name", std::string("run"));
    size_t common = first.size();
    for (const auto& run : runs) {
      const std::string other = run.config.value("name", std::string("run"));
      size_t n = 0;
      while (n < common && n < other.size() && first[n] == other[n]) ++n;
      common = n;
    }
    variants[0].name = first;
    if (common < first.size()) {
      const size_t cut = first.substr(0, common).find_last_of("-_. ");
      if (cut != std::string::npos && cut > 0) variants[0].name = first.substr(0, cut);
    }
    return variants;
  }
  // A key differing between any two variants differs between one of them and the first variant.
  std::set<std::string> keys;
  for (size_t v = 1; v < variants.size(); ++v)
    for (const auto& key : config_differences(stripped[representative[0]], stripped[representative[v]]))
      keys.insert(key);
  std::map<std::string, int> leaf_count;
  for (const auto& key : keys) ++leaf_count[leaf_key(key)];
  for (size_t v = 0; v < variants.size(); ++v) {
    std::string name;
    for (const auto& key : keys) {
      if (!name.empty()) name += ", ";
      name += (leaf_count[leaf_key(key)] > 1 ? key : leaf_key(key)) + "=" +
              value_text(value_at(stripped[representative[v]], key));
    }
    variants[v].name = name;
  }
  return variants;
}

double x_of(const MetricsRecord& record, XAxis axis) {
  switch (axis) {
    case XAxis::Tokens:
      return static_cast<double>(record.tokens);
    case XAxis::Time:
      return record.elapsed_s;
    case XAxis::Step:
      break;
  }
  return static_cast<double>(record.step);
}

Curve make_curve(std::vector<std::pair<double, double>> points) {
  // Stable: of several points at one x (a train and an eval record share a step) the later one wins.
  std::stable_sort(points.begin(), points.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  Curve curve;
  for (const auto& [x, y] : points) {
    if (!std::isfinite(x) || !std::isfinite(y)) continue;
    if (!curve.x.empty() && curve.x.back() == x) {
      curve.y.back() = y;
    } else {
      curve.x.push_back(x);
      curve.y.push_back(y);
    }
  }
  return curve;
}

Curve metric_curve(const RunData& run, const std::string& metric, XAxis axis) {
  std::vector<std::pair<double, double>> points;
  for (const auto& r : run.records) {
    const auto& value = metric == "train_loss" ? r.train_loss : r.val_loss;
    if (value) points.emplace_back(x_of(r, axis), *value);
  }
  return make_curve(std::move(points));
}

Curve ema_smooth(const Curve& curve, double alpha) {
  Curve out = curve;
  if (alpha <= 0) return out;
  double ema = 0, weight = 1;  // weight = alpha^(i+1) after step i
  for (size_t i = 0; i < out.y.size(); ++i) {
    ema = alpha * ema + (1 - alpha) * curve.y[i];
    weight *= alpha;
    out.y[i] = ema / (1 - weight);
  }
  return out;
}

std::optional<double> interpolate(const Curve& curve, double x) {
  if (curve.x.empty() || x < curve.x.front() || x > curve.x.back()) return std::nullopt;
  const size_t hi = std::lower_bound(curve.x.begin(), curve.x.end(), x) - curve.x.begin();
  if (curve.x[hi] == x) return curve.y[hi];
  const size_t lo = hi - 1;  // x > front, so hi > 0
  const double w = (x - curve.x[lo]) / (curve.x[hi] - curve.x[lo]);
  return curve.y[lo] + w * (curve.y[hi] - curve.y[lo]);
}

AlignedCurve align_curves(const std::vector<Curve>& curves) {
  std::vector<double> grid;
  for (const auto& c : curves) grid.insert(grid.end(), c.x.begin(), c.x.end());
  std::sort(grid.begin(), grid.end());
  grid.erase(std::unique(grid.begin(), grid.end()), grid.end());
  // Before the last curve starts the mean would jump as runs join (time axes differ per seed): start there.
  double start = -std::numeric_limits<double>::infinity();
  for (const auto& c : curves)
    if (!c.x.empty()) start = std::max(start, c.x.front());
  AlignedCurve out;
  for (double x : grid) {
    if (x < start) continue;
    std::vector<double> values;
    for (const auto& c : curves)
      if (auto y = interpolate(c, x)) values.push_back(*y);
    if (values.empty()) continue;
    out.x.push_back(x);
    out.mean.push_back(mean(values));
    out.std.push_back(sample_std(values));
    out.min.push_back(*std::min_element(values.begin(), values.end()));
    out.max.push_back(*std::max_element(values.begin(), values.end()));
    out.n.push_back(static_cast<int>(values.size()));
  }
  return out;
}

}  // namespace ssmax
