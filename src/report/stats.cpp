#include "report/stats.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <boost/math/distributions/students_t.hpp>

namespace ssmax {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

}  // namespace

double mean(const std::vector<double>& values) {
  if (values.empty()) return kNaN;
  double sum = 0;
  for (double v : values) sum += v;
  return sum / values.size();
}

double sample_std(const std::vector<double>& values) {
  if (values.size() < 2) return kNaN;
  const double m = mean(values);
  double sum = 0;
  for (double v : values) sum += (v - m) * (v - m);
  return std::sqrt(sum / (values.size() - 1));
}

double student_t_two_sided_p(double t, double df) {
  if (std::isnan(t) || !(df > 0)) return kNaN;
  if (std::isinf(t)) return 0;
  return 2 * boost::math::cdf(boost::math::complement(boost::math::students_t(df), std::fabs(t)));
}

WelchResult welch_t_test(const std::vector<double>& a, const std::vector<double>& b) {
  WelchResult r;
  r.diff = mean(b) - mean(a);
  if (a.size() < 2 || b.size() < 2) return r;
  // Squared standard errors of the two means.
  const double va = std::pow(sample_std(a), 2) / a.size();
  const double vb = std::pow(sample_std(b), 2) / b.size();
  if (va + vb == 0) return r;  // no spread at all: t and df are 0/0
  r.t = r.diff / std::sqrt(va + vb);
  // Welch–Satterthwaite; a group with zero variance contributes 0 to the denominator.
  r.df = (va + vb) * (va + vb) / (va * va / (a.size() - 1) + vb * vb / (b.size() - 1));
  r.p = student_t_two_sided_p(*r.t, *r.df);
  return r;
}

WelchResult paired_t_test(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> d(a.size());
  for (size_t i = 0; i < a.size(); ++i) d[i] = b[i] - a[i];
  WelchResult r;
  r.diff = mean(d);
  if (d.size() < 2) return r;
  const double se = sample_std(d) / std::sqrt(static_cast<double>(d.size()));
  if (se == 0) return r;  // the same difference for every pair: t is undefined
  r.t = r.diff / se;
  r.df = static_cast<double>(d.size() - 1);
  r.p = student_t_two_sided_p(*r.t, *r.df);
  return r;
}

std::vector<double> holm_adjust(const std::vector<double>& p) {
  std::vector<size_t> order;
  for (size_t i = 0; i < p.size(); ++i)
    if (!std::isnan(p[i])) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] < p[b]; });
  std::vector<double> adjusted(p.size(), kNaN);
  const double m = static_cast<double>(order.size());
  double running = 0;  // adjusted values never decrease along the sorted order
  for (size_t k = 0; k < order.size(); ++k) {
    running = std::max(running, std::min(1.0, (m - static_cast<double>(k)) * p[order[k]]));
    adjusted[order[k]] = running;
  }
  return adjusted;
}

double student_t_quantile(double level, double df) {
  return boost::math::quantile(boost::math::complement(boost::math::students_t(df), (1 - level) / 2));
}

Interval t_interval(const std::vector<double>& values, double level) {
  if (values.size() < 2) return {std::nan(""), std::nan("")};
  const double n = static_cast<double>(values.size());
  const double half = student_t_quantile(level, n - 1) * sample_std(values) / std::sqrt(n);
  return {mean(values) - half, mean(values) + half};
}

}  // namespace ssmax
