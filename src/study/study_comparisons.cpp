#include "study/study_comparisons.h"

#include <cmath>
#include <cstdio>

namespace ssmax {
using json = nlohmann::json;

std::string fixed_text(double x, int decimals) {
  if (!std::isfinite(x)) return "–";
  char text[48];
  std::snprintf(text, sizeof text, "%.*f", decimals, x);
  return text;
}

std::string mean_std_text(const std::vector<double>& values, int decimals) {
  if (values.empty()) return "–";
  if (values.size() < 2) return fixed_text(mean(values), decimals) + " (1 seed)";
  return fixed_text(mean(values), decimals) + " ± " + fixed_text(sample_std(values), decimals);
}

std::string p_value_text(const std::optional<double>& p) {
  if (!p || std::isnan(*p)) return "–";
  return *p < 1e-4 ? "<0.0001" : fixed_text(*p, 4);
}

std::string pooled_rate_text(double successes, double n) {
  if (!(n > 0)) return "–";
  return fixed_text(100 * successes / n, 0) + " % (" + fixed_text(successes, 0) + "/" + fixed_text(n, 0) + ")";
}

Interval rate_interval_over_seeds(const std::vector<double>& per_seed) {
  const Interval ci = t_interval(per_seed);
  if (std::isnan(ci.lo)) return ci;
  return {std::max(0.0, ci.lo), std::min(1.0, ci.hi)};
}

std::string seed_rate_text(const std::vector<double>& per_seed) {
  if (per_seed.empty()) return "–";
  const std::string rate = fixed_text(100 * mean(per_seed), 0) + " %";
  if (per_seed.size() < 2) return rate + " (1 seed)";
  const Interval ci = rate_interval_over_seeds(per_seed);
  return rate + " [" + fixed_text(100 * ci.lo, 0) + "–" + fixed_text(100 * ci.hi, 0) + "] (" +
         std::to_string(per_seed.size()) + " seeds)";
}

json stat_json(const std::vector<double>& values) {
  return {{"values", values},
          {"n", values.size()},
          {"mean", values.empty() ? json(nullptr) : json(mean(values))},
          {"std", values.size() < 2 ? json(nullptr) : json(sample_std(values))}};
}

size_t ComparisonFamily::add(Comparison comparison) {
  comparison.paired = comparison.paired && comparison.va.size() == comparison.vb.size();
  comparison.welch =
      comparison.paired ? paired_t_test(comparison.va, comparison.vb) : welch_t_test(comparison.va, comparison.vb);
  items_.push_back(std::move(comparison));
  return items_.size() - 1;
}

void ComparisonFamily::adjust() {
  std::vector<double> p;
  for (const auto& c : items_) p.push_back(c.welch.p ? *c.welch.p : std::nan(""));
  const auto adjusted = holm_adjust(p);
  for (size_t i = 0; i < items_.size(); ++i) items_[i].p_holm = adjusted[i];
}

bool ComparisonFamily::significant(const Comparison& c) const { return !std::isnan(c.p_holm) && c.p_holm <= alpha_; }

std::string ComparisonFamily::verdict(const Comparison& c) const {
  const std::string diff = (c.welch.diff >= 0 ? "+" : "") + fixed_text(c.welch.diff, c.decimals) + c.unit;
  const std::string pair = c.b + " vs " + c.a + ", " + c.topic;
  if (c.va.empty() || c.vb.empty()) return pair + ": no results yet.";
  if (!c.welch.p)
    return pair + ": difference " + diff + "; not testable (needs two or more seeds per variant, with some spread).";
  if (significant(c)) {
    const bool better = (c.welch.diff > 0) == c.higher_is_better;
    return c.b + " has a " + (c.welch.diff > 0 ? "higher " : "lower ") + c.topic + " than " + c.a + " (" + diff +
           ", means over " + std::to_string(c.vb.size()) + " and " + std::to_string(c.va.size()) +
           " seeds; Holm-adjusted p = " + p_value_text(c.p_holm) + " ≤ α = " + short_number(alpha_) + "): " + c.b +
           (better ? " is better here." : " is worse here.");
  }
  return pair + ": no significant difference at α = " + short_number(alpha_) + " after correction (difference " + diff +
         ", p = " + p_value_text(c.welch.p) + ", adjusted " + p_value_text(c.p_holm) + ").";
}

DocumentTable ComparisonFamily::table(const std::vector<size_t>& ids, const std::string& caption) const {
  DocumentTable table{
      caption, {"comparison (b − a)", "difference", "t", "df", "p", "Holm-adjusted p", "significant"}, {}};
  for (size_t id : ids) {
    const Comparison& c = items_[id];
    table.rows.push_back({c.topic + ": " + c.b + " − " + c.a + (c.paired ? " (paired)" : ""),
                          fixed_text(c.welch.diff, c.decimals) + c.unit, c.welch.t ? fixed_text(*c.welch.t, 2) : "–",
                          c.welch.df ? fixed_text(*c.welch.df, 1) : "–", p_value_text(c.welch.p),
                          p_value_text(c.p_holm), significant(c) ? "yes" : "no"});
  }
  return table;
}

json ComparisonFamily::to_json() const {
  json out = json::array();
  for (const auto& c : items_)
    out.push_back({{"topic", c.topic},
                   {"a", c.a},
                   {"b", c.b},
                   {"a_values", c.va},
                   {"b_values", c.vb},
                   {"difference_b_minus_a", c.welch.diff},
                   {"test", c.paired ? "paired t" : "Welch t"},
                   {"t", c.welch.t ? json(*c.welch.t) : json(nullptr)},
                   {"df", c.welch.df ? json(*c.welch.df) : json(nullptr)},
                   {"p", c.welch.p ? json(*c.welch.p) : json(nullptr)},
                   {"p_holm", std::isnan(c.p_holm) ? json(nullptr) : json(c.p_holm)},
                   {"significant", significant(c)}});
  return out;
}

}  // namespace ssmax
