#pragma once
// Runs as `compare` sees them: loading run directories, grouping them into variants by their config
// difference, the dataset-compatibility check, EMA smoothing and aligning the curves of several seeds.
// Torch-free: reads config.json and metrics.jsonl only.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "run/metrics.h"

namespace ssmax {

struct RunData {
  std::string dir;
  nlohmann::json config;  // config.json as written by train (resolved)
  std::vector<MetricsRecord> records;
  int64_t max_steps = 0;      // train.max_steps from the config
  int64_t last_step = 0;      // step of the last record
  bool in_progress = false;   // no checkpoint manifest for step max_steps yet
  std::string label() const;  // the directory name, for messages and tables
};

// Loads <dir>/config.json and <dir>/metrics.jsonl. Returns nothing (and appends a one-line warning)
// when `dir` is not a run, its files cannot be parsed or its metrics are empty; a cut-off last line of
// metrics.jsonl is tolerated with a warning.
std::optional<RunData> load_run(const std::string& dir, std::vector<std::string>& warnings);

// Throws UsageError naming the first differing data.* key (the dataset identity: sources, tokenizer
// settings, val_fraction; not the cache location data.dataset_dir) unless `force`, in which case the
// difference is added to `warnings`.
void check_same_dataset(const std::vector<RunData>& runs, bool force, std::vector<std::string>& warnings);

struct Variant {
  std::string name;          // e.g. "normalizer=ssmax, s_init=0.2"; the config name when there is one variant
  std::vector<size_t> runs;  // indices into the runs vector, in command-line order
};

// Groups runs whose configs are equal apart from seed, out_dir and name. Variants are named by the keys
// that differ between them (leaf names such as "s_init" unless two differing keys share a leaf).
std::vector<Variant> group_variants(const std::vector<RunData>& runs);

// The same grouping for resolved configs alone (a checkpoint's or a run's config.json): how `eval`, `needle` and
// `attention` draw one line or map per variant, with a band over its seeds, instead of one per checkpoint.
std::vector<Variant> group_configs(const std::vector<nlohmann::json>& configs);

// A curve of one run: x ascending and unique.
struct Curve {
  std::vector<double> x, y;
};

enum class XAxis { Step, Tokens, Time };
double x_of(const MetricsRecord& record, XAxis axis);

// The run's curve of `metric` ("val_loss" or "train_loss") against `axis`; records without the metric
// are skipped. A later record at the same x replaces an earlier one.
Curve metric_curve(const RunData& run, const std::string& metric, XAxis axis);

// Makes a curve from (x, y) pairs in record order: sorted by x, the last value kept for a repeated x.
Curve make_curve(std::vector<std::pair<double, double>> points);

// EMA with TensorBoard's debiasing: e_0 = 0, e_i = alpha·e_{i-1} + (1-alpha)·y_i, smoothed_i =
// e_i / (1 - alpha^(i+1)). alpha is the weight of the past (0 = no smoothing); the division removes the
// pull towards 0 at the start, so the first smoothed value is y_0 itself.
Curve ema_smooth(const Curve& curve, double alpha);

// Linear interpolation at x; nothing outside [x.front(), x.back()].
std::optional<double> interpolate(const Curve& curve, double x);

// Several seeds' curves on one grid: the union of their x values from the point where every curve has
// started. At each x the runs whose range covers x contribute (interpolated linearly between their own
// points); n says how many did, so a run still in progress drops out of the mean after its last record.
struct AlignedCurve {
  std::vector<double> x, mean, std, min, max;  // std is NaN where n < 2
  std::vector<int> n;
};
AlignedCurve align_curves(const std::vector<Curve>& curves);

}  // namespace ssmax
