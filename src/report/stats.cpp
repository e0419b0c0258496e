#include "report/stats.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace ssmax {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Continued fraction for the incomplete beta function, evaluated with the modified Lentz method
// (Numerical Recipes, 2nd ed., §6.4 "betacf"). Converges quickly for x < (a+1)/(a+b+2); the caller
// uses the symmetry I_x(a,b) = 1 - I_{1-x}(b,a) to stay in that region.
double beta_continued_fraction(double a, double b, double x) {
  constexpr int kMaxIterations = 300;
  constexpr double kEpsilon = 1e-15;
  constexpr double kTiny = 1e-300;  // stands in for a zero denominator
  const double qab = a + b, qap = a + 1, qam = a - 1;
  double c = 1, d = 1 - qab * x / qap;
  if (std::fabs(d) < kTiny) d = kTiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m <= kMaxIterations; ++m) {
    const int m2 = 2 * m;
    // Even step of the recurrence.
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1 / d;
    h *= d * c;
    // Odd step.
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1 / d;
    const double delta = d * c;
    h *= delta;
    if (std::fabs(delta - 1) < kEpsilon) break;
  }
  return h;
}

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

double incomplete_beta(double a, double b, double x) {
  if (!(a > 0) || !(b > 0) || !(x >= 0 && x <= 1)) return kNaN;
  if (x == 0 || x == 1) return x;
  // Prefactor x^a (1-x)^b / B(a,b), in logs to avoid overflow for large a, b.
  const double log_front = std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  const double front = std::exp(log_front);
  if (x < (a + 1) / (a + b + 2)) return front * beta_continued_fraction(a, b, x) / a;
  return 1 - front * beta_continued_fraction(b, a, 1 - x) / b;
}

double student_t_two_sided_p(double t, double df) {
  if (std::isnan(t) || !(df > 0)) return kNaN;
  if (std::isinf(t)) return 0;
  return incomplete_beta(df / 2, 0.5, df / (df + t * t));
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
  double lo = 0, hi = 1;
  while (student_t_two_sided_p(hi, df) > 1 - level) hi *= 2;  // p falls as t grows
  for (int i = 0; i < 200 && hi - lo > 1e-12 * hi; ++i) {
    const double mid = 0.5 * (lo + hi);
    (student_t_two_sided_p(mid, df) > 1 - level ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

Interval t_interval(const std::vector<double>& values, double level) {
  if (values.size() < 2) return {std::nan(""), std::nan("")};
  const double n = static_cast<double>(values.size());
  const double half = student_t_quantile(level, n - 1) * sample_std(values) / std::sqrt(n);
  return {mean(values) - half, mean(values) + half};
}

}  // namespace ssmax
