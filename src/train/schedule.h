#pragma once
// Learning-rate schedule, counted in optimizer steps (not micro-steps).
//   warmup:   lr·(i+1)/warmup_steps for the first warmup_steps steps (i is 0-based)
//   then, with p = (i − warmup)/(max_steps − warmup) ∈ [0, 1):
//   cosine:   min_lr + ½(1 + cos πp)(lr − min_lr)
//   linear:   lr − p(lr − min_lr)
//   constant: lr
#include <algorithm>
#include <cmath>

#include "config/config.h"

namespace ssmax {

inline double learning_rate(const OptimConfig& o, int64_t step_index, int64_t max_steps) {
  if (step_index < o.warmup_steps) return o.lr * static_cast<double>(step_index + 1) / o.warmup_steps;
  if (o.schedule == "constant") return o.lr;
  const double span = std::max<int64_t>(1, max_steps - o.warmup_steps);
  const double p = std::clamp((step_index - o.warmup_steps) / span, 0.0, 1.0);
  if (o.schedule == "linear") return o.lr - p * (o.lr - o.min_lr);
  return o.min_lr + 0.5 * (1.0 + std::cos(M_PI * p)) * (o.lr - o.min_lr);
}

}  // namespace ssmax
