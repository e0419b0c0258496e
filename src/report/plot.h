#pragma once
// Line plots for reports, drawn with cairo: lines with an optional band, a legend outside the plot area
// on the right, labelled axes with 1/2/5×10^k ticks, optional log x and vertical event markers. Colours,
// text and the PNG/SVG output are shared with heatmaps (report/canvas.h).
#include <cstddef>
#include <string>
#include <vector>

namespace ssmax {

struct PlotSeries {
  std::string label;           // legend entry
  std::vector<double> x, y;    // the line; non-finite points break it
  std::vector<double> lo, hi;  // the band around it (same length as x), or empty for none
  std::vector<bool> partial;   // per point: fewer runs than usual behind it; segments touching one are dashed
  size_t color = 0;            // index into the Okabe–Ito palette (cycles after 8)
};

// Black: a reference line (the training length) must stay readable whatever the series' colours; the palette's
// last colour, yellow, was all but invisible on white.
constexpr size_t kMarkerColor = 6;

// A vertical dashed line across the plot, e.g. where a run switched its normalizer.
struct PlotMarker {
  double x = 0;
  std::string label;
  size_t color = 0;
};

struct PlotPanel {
  std::string title, x_label, y_label;
  bool log_x = false;  // points with x <= 0 are left out on a log axis
  std::vector<PlotSeries> series;
  std::vector<PlotMarker> markers;
  // Ticks at these x values, labelled "%g" (the lengths evaluated: 256 … 2048); empty: 1/2/5 × 10^k or linear.
  std::vector<double> x_ticks;
};

// Panels stacked top to bottom under an optional title and a one-line note.
struct Figure {
  std::string title, note;
  std::vector<PlotPanel> panels;
  int width = 1000;  // pixels (PNG) or points (SVG)
  int panel_height = 520;
};

// Writes <stem>.png and <stem>.svg and returns their paths; throws RuntimeFailure naming the file on
// failure.
std::vector<std::string> write_figure(const Figure& figure, const std::string& stem);

// About `target` round tick values (1, 2 or 5 × 10^k apart) covering [lo, hi]: the first is <= lo and
// the last >= hi, so the axis can end on ticks.
std::vector<double> nice_ticks(double lo, double hi, int target = 7);

// Ticks for a log axis over [lo, hi] (both > 0): 1, 2, 5 × 10^k, or only powers of ten on wide ranges;
// linear nice ticks inside the range when it is too narrow for three of those.
std::vector<double> log_ticks(double lo, double hi);

// A tick value as text: decimals to match `spacing`; k/M/G units once ticks are 10^3/10^5/10^8 apart.
std::string tick_label(double value, double spacing);

}  // namespace ssmax
