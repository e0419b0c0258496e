#pragma once
// The report's statistics: one family of Welch tests over seeds, Holm–Bonferroni-adjusted together, each stated in
// words only as strongly as its adjusted p-value allows; and the number formats the tables share. Torch-free.
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "report/document.h"
#include "report/stats.h"
#include "util/text.h"  // short_number

namespace ssmax {

// "4.6910 ± 0.0123", "4.6910 (1 seed)", "–" for none.
std::string mean_std_text(const std::vector<double>& values, int decimals);
std::string fixed_text(double x, int decimals);  // "–" when not finite
std::string p_value_text(const std::optional<double>& p);
// 60 % (12/20): a pooled rate as a description, without an interval (its trials are not independent draws).
std::string pooled_rate_text(double successes, double n);
// Per-seed rates in [0, 1]: their mean with a 95 % t interval over seeds, clipped to [0, 1] (NaN with < 2 seeds).
Interval rate_interval_over_seeds(const std::vector<double>& per_seed);
// 63 % [41–85] (3 seeds); "63 % (1 seed)"; "–" for none.
std::string seed_rate_text(const std::vector<double>& per_seed);
nlohmann::json stat_json(const std::vector<double>& values);  // values, n, mean, std (null when undefined)

// One comparison: the difference mean(b) - mean(a) over seeds.
struct Comparison {
  std::string topic;  // "final validation loss"
  std::string unit;   // " nats", or "" for rates
  std::string a, b;   // variant names
  std::vector<double> va, vb;
  bool higher_is_better = false;
  int decimals = 4;
  // The same models (seed by seed) measured two ways — as trained and with a scaling at evaluation: a paired t-test
  // of the per-seed differences (when both have every seed), not Welch's.
  bool paired = false;
  WelchResult welch;                                         // filled by ComparisonFamily::add
  double p_holm = std::numeric_limits<double>::quiet_NaN();  // filled by ComparisonFamily::adjust
};

class ComparisonFamily {
 public:
  explicit ComparisonFamily(double alpha) : alpha_(alpha) {}
  size_t add(Comparison comparison);  // returns its id
  void adjust();                      // Holm over every comparison added so far
  const Comparison& at(size_t id) const { return items_[id]; }
  size_t size() const { return items_.size(); }
  bool significant(const Comparison& c) const;
  // One sentence, e.g. "ssmax has a lower final validation loss than softmax (−0.0210 nats, …): ssmax is better."
  // or "… no significant difference at α = 0.05 after correction (…)".
  std::string verdict(const Comparison& c) const;
  DocumentTable table(const std::vector<size_t>& ids, const std::string& caption) const;
  nlohmann::json to_json() const;

 private:
  double alpha_;
  std::vector<Comparison> items_;
};

}  // namespace ssmax
