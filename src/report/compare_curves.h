#pragma once
// The curve files of a `compare` report (see compare.h): loss.png/.svg, s.png/.svg and b.png/.svg, and
// curves.csv. Unlike the tables, these follow the chosen x axis and smoothing.
#include <string>
#include <vector>

#include "report/compare.h"
#include "report/run_data.h"

namespace ssmax {

// Writes them into options.out_dir (which exists) and returns their paths in the order written; figures
// without a single line are left out. `legend_labels` name the variants, in their order.
std::vector<std::string> write_curve_files(const CompareOptions& options, XAxis axis, const std::vector<RunData>& runs,
                                           const std::vector<Variant>& variants,
                                           const std::vector<std::string>& legend_labels);

}  // namespace ssmax
