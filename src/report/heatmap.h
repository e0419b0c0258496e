#pragma once
// A labelled heatmap (rows × columns of values, each cell printed) as PNG and SVG, drawn with cairo like
// the line plots (report/canvas.h). Used for attention mass per layer × head and needle accuracy per
// depth × length. Torch-free.
#include <string>
#include <vector>

namespace ssmax {

struct Heatmap {
  std::string title, note;
  std::string row_label, column_label;      // axis titles
  std::vector<std::string> rows, columns;   // tick labels, top to bottom and left to right
  std::vector<std::vector<double>> values;  // [row][column]; NaN = no value
  double lo = 0, hi = 1;                    // colour scale range
  std::string format = "%.2f";              // printf format of the cell text
};

// Writes <stem>.png and <stem>.svg; returns their paths. Throws RuntimeFailure naming the file on failure.
std::vector<std::string> write_heatmap(const Heatmap& heatmap, const std::string& stem);

}  // namespace ssmax
