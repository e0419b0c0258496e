#pragma once
// Small statistics for comparing runs: mean, sample standard deviation, Welch's t-test, Holm's adjustment and
// t intervals. Student's t distribution is Boost.Math's (boost::math::students_t).
#include <optional>
#include <vector>

namespace ssmax {

// Arithmetic mean; NaN for an empty list.
double mean(const std::vector<double>& values);

// Sample standard deviation (divisor n-1); NaN when fewer than two values.
double sample_std(const std::vector<double>& values);

// Two-sided p-value of Student's t statistic with `df` degrees of freedom (df > 0, may be fractional): P(|T| >= |t|).
double student_t_two_sided_p(double t, double df);

struct WelchResult {
  double diff = 0;           // mean(b) - mean(a)
  std::optional<double> t;   // unset when it is undefined (fewer than two values in a group, or both variances 0)
  std::optional<double> df;  // Welch–Satterthwaite degrees of freedom
  std::optional<double> p;   // two-sided
};

// Welch's unequal-variance t-test of the difference of means, b - a.
WelchResult welch_t_test(const std::vector<double>& a, const std::vector<double>& b);

// The paired t-test of b - a, pair by pair (a[i] and b[i] measured on the same unit, e.g. one trained model evaluated
// two ways): a one-sample t-test of the differences, df = n - 1. `a` and `b` have the same length.
WelchResult paired_t_test(const std::vector<double>& a, const std::vector<double>& b);

// Holm–Bonferroni step-down adjustment of a family of p-values (same order as given; NaN entries are left out of
// the family and stay NaN): reject H_i at family-wise level alpha when adjusted p_i <= alpha. Controls the chance of
// any false "significant" among the family under any dependence between the tests.
std::vector<double> holm_adjust(const std::vector<double>& p);

// A two-sided interval [lo, hi].
struct Interval {
  double lo = 0, hi = 1;
};

// Two-sided quantile of Student's t: the t > 0 with P(|T| >= t) = 1 - level, for df > 0. 12.706 for df = 1 at
// 95 %, 1.96 as df grows.
double student_t_quantile(double level, double df);

// Confidence interval of the mean of `values` (independent draws, e.g. one per seed): mean ± t·s/√n. NaN bounds
// for fewer than two values (no spread to go by).
Interval t_interval(const std::vector<double>& values, double level = 0.95);

}  // namespace ssmax
