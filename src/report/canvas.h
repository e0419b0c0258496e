#pragma once
// What the report's pictures (plot.cpp: line plots, heatmap.cpp: heatmaps) draw with: their colours,
// text in cairo's toy API with "DejaVu Sans" (Debian fonts-dejavu-core), and writing one drawing as both
// PNG and SVG. Internal to src/report: it includes cairo, whose include directories are kept off the
// torch targets (they would invalidate the precompiled header), so the public headers plot.h and
// heatmap.h must not include it.
#include <cairo.h>

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace ssmax {

struct Rgb {
  double r, g, b;
};

// Okabe–Ito colours, distinguishable with the common colour-vision deficiencies; cycles after 8.
Rgb palette_color(size_t index);

// Viridis at t in [0, 1] (clamped): perceptually even and readable in greyscale.
Rgb viridis(double t);

void set_color(cairo_t* cr, const Rgb& c, double alpha = 1);

void set_font(cairo_t* cr, double size, bool bold = false);

// Advance width of `text` in the current font.
double text_width(cairo_t* cr, const std::string& text);

// Draws text with its anchor at (x, y): align 0 = left, 0.5 = centre, 1 = right; y is the baseline.
void show_text(cairo_t* cr, const std::string& text, double x, double y, double align = 0);

// Shortens text (at UTF-8 character boundaries) until it fits `max_width`, ending it with "…".
std::string fit_text(cairo_t* cr, std::string text, double max_width);

struct CanvasSpec {
  double width, height;  // points in the SVG; the PNG has them truncated to whole pixels
  std::string what;      // the picture's kind, for errors: "cannot draw the <what>"
};

// Runs `draw` once on an image surface written to <stem>.png and once on an SVG surface written to
// <stem>.svg, so the two always agree; returns their paths. The PNG has no alpha channel: `draw` paints
// its whole background. Throws RuntimeFailure naming the file that failed.
std::vector<std::string> write_png_and_svg(const std::string& stem, const CanvasSpec& spec,
                                           const std::function<void(cairo_t*)>& draw);

}  // namespace ssmax
