#include "report/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "report/canvas.h"
#include "util/text.h"

namespace ssmax {
namespace {

constexpr double kTitleSize = 17, kLabelSize = 13, kTickSize = 11.5, kLegendSize = 12.5, kMarkerSize = 10.5;

struct Box {
  double x, y, w, h;
};

int decimals_for(double spacing) { return std::max(0, static_cast<int>(-std::floor(std::log10(spacing) + 1e-9))); }

// Maps data coordinates into the plot box.
struct Axes {
  Box box;
  double x0, x1, y0, y1;
  bool log_x;
  double fx(double x) const { return log_x ? std::log10(x) : x; }
  double px(double x) const { return box.x + (fx(x) - fx(x0)) / (fx(x1) - fx(x0)) * box.w; }
  double py(double y) const { return box.y + box.h - (y - y0) / (y1 - y0) * box.h; }
  bool usable(double x) const { return std::isfinite(x) && (!log_x || x > 0); }
};

// Data ranges of a panel, widened where they would be empty.
void data_range(const PlotPanel& panel, double& x0, double& x1, double& y0, double& y1) {
  const double inf = std::numeric_limits<double>::infinity();
  x0 = y0 = inf;
  x1 = y1 = -inf;
  auto take_x = [&](double x) {
    if (!std::isfinite(x) || (panel.log_x && x <= 0)) return false;
    x0 = std::min(x0, x), x1 = std::max(x1, x);
    return true;
  };
  auto take_y = [&](double y) {
    if (std::isfinite(y)) y0 = std::min(y0, y), y1 = std::max(y1, y);
  };
  for (const auto& s : panel.series)
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!take_x(s.x[i])) continue;
      take_y(s.y[i]);
      if (!s.lo.empty()) take_y(s.lo[i]), take_y(s.hi[i]);
    }
  for (const auto& m : panel.markers) take_x(m.x);
  if (x0 > x1) x0 = panel.log_x ? 1 : 0, x1 = panel.log_x ? 10 : 1;
  if (y0 > y1) y0 = 0, y1 = 1;
  if (x0 == x1) x0 = panel.log_x ? x0 / 2 : x0 - 1, x1 = panel.log_x ? x1 * 2 : x1 + 1;
  if (y0 == y1) y0 -= std::max(0.5, std::fabs(y0) * 0.05), y1 += std::max(0.5, std::fabs(y1) * 0.05);
}

// Where a panel's plot box and ticks fall: from the data, the ticks, and the text that goes in the margins.
struct PanelLayout {
  Box box;
  Axes axes;
  std::vector<double> x_ticks, y_ticks;
  double x_spacing, y_spacing;
  double legend_w;
};

PanelLayout layout_panel(cairo_t* cr, const PlotPanel& panel, const Box& area) {
  double x0, x1, y0, y1;
  data_range(panel, x0, x1, y0, y1);
  std::vector<double> yt = nice_ticks(y0, y1), xt;
  y0 = yt.front(), y1 = yt.back();  // the y axis ends on ticks
  if (!panel.x_ticks.empty()) {
    xt = panel.x_ticks;
  } else if (panel.log_x) {
    xt = log_ticks(x0, x1);
  } else {
    xt = nice_ticks(x0, x1);
    x0 = xt.front();  // starts on a tick (usually 0) but ends at the data: no empty strip on the right
  }
  const double y_spacing = yt.size() > 1 ? yt[1] - yt[0] : 1;
  const double x_spacing = xt.size() > 1 ? xt[1] - xt[0] : 1;

  // Margins from the text that goes in them.
  set_font(cr, kTickSize);
  double y_tick_width = 0;
  for (double v : yt) y_tick_width = std::max(y_tick_width, text_width(cr, tick_label(v, y_spacing)));
  set_font(cr, kLegendSize);
  double legend_text = 0;
  for (const auto& s : panel.series) legend_text = std::max(legend_text, text_width(cr, s.label));
  const double legend_w = std::min(legend_text, area.w * 0.38) + 42;
  const double top = area.y + (panel.title.empty() ? 14 : 36);
  Box box{area.x + y_tick_width + 44, top, 0, 0};
  box.w = area.x + area.w - legend_w - 12 - box.x;
  box.h = area.y + area.h - 58 - top;
  return {box, Axes{box, x0, x1, y0, y1, panel.log_x}, xt, yt, x_spacing, y_spacing, legend_w};
}

// Title, grid, tick labels and axis labels.
void draw_axes(cairo_t* cr, const PlotPanel& panel, const Box& area, const PanelLayout& layout) {
  const Box& box = layout.box;
  const Axes& ax = layout.axes;
  const std::vector<double>&xt = layout.x_ticks, &yt = layout.y_ticks;
  const double x0 = ax.x0, x1 = ax.x1;
  // Log ticks (1/2/5 × 10^k) are labelled by their own size; the linear fallback by its spacing.
  const bool evenly_spaced = xt.size() >= 3 && std::fabs((xt[2] - xt[1]) - (xt[1] - xt[0])) < 1e-9 * std::fabs(xt[2]);
  auto x_text = [&](double v) {
    return panel.x_ticks.empty() ? tick_label(v, panel.log_x && !evenly_spaced ? v : layout.x_spacing)
                                 : short_number(v);
  };
  if (!panel.title.empty()) {
    set_font(cr, kLabelSize + 1, true);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    show_text(cr, fit_text(cr, panel.title, area.w - 20), box.x, area.y + 22);
  }
  // Grid and tick labels.
  cairo_set_line_width(cr, 1);
  set_font(cr, kTickSize);
  for (double v : yt) {
    const double y = std::round(ax.py(v)) + 0.5;
    cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
    cairo_move_to(cr, box.x, y);
    cairo_line_to(cr, box.x + box.w, y);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
    show_text(cr, tick_label(v, layout.y_spacing), box.x - 6, y + 4, 1);
  }
  for (double v : xt) {
    if (v < x0 || v > x1) continue;
    const double x = std::round(ax.px(v)) + 0.5;
    cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
    cairo_move_to(cr, x, box.y);
    cairo_line_to(cr, x, box.y + box.h);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
    show_text(cr, x_text(v), x, box.y + box.h + 17, 0.5);
  }
  // Axis labels: x centred below, y rotated on the left.
  set_font(cr, kLabelSize);
  cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
  show_text(cr, panel.x_label + (panel.log_x ? " (log scale)" : ""), box.x + box.w / 2, box.y + box.h + 42, 0.5);
  cairo_save(cr);
  cairo_translate(cr, area.x + 16, box.y + box.h / 2);
  cairo_rotate(cr, -M_PI / 2);
  show_text(cr, panel.y_label, 0, 0, 0.5);
  cairo_restore(cr);
}

// The bands (± a spread) of the series that have them, under the lines.
void draw_bands(cairo_t* cr, const PlotPanel& panel, const Axes& ax) {
  for (const auto& s : panel.series) {
    if (s.lo.empty()) continue;
    std::vector<size_t> idx;
    for (size_t i = 0; i < s.x.size(); ++i)
      if (ax.usable(s.x[i]) && std::isfinite(s.lo[i]) && std::isfinite(s.hi[i])) idx.push_back(i);
    if (idx.size() < 2) continue;
    for (size_t i : idx) cairo_line_to(cr, ax.px(s.x[i]), ax.py(s.hi[i]));
    for (auto it = idx.rbegin(); it != idx.rend(); ++it) cairo_line_to(cr, ax.px(s.x[*it]), ax.py(s.lo[*it]));
    cairo_close_path(cr);
    set_color(cr, palette_color(s.color), 0.2);
    cairo_fill(cr);
  }
}

// Each series' line: solid, dashed where a point is partial, a dot where only one point is drawn.
void draw_lines(cairo_t* cr, const PlotPanel& panel, const Axes& ax) {
  cairo_set_line_width(cr, 2);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  for (const auto& s : panel.series) {
    set_color(cr, palette_color(s.color));
    auto ok = [&](size_t i) { return ax.usable(s.x[i]) && std::isfinite(s.y[i]); };
    auto partial = [&](size_t i) { return i < s.partial.size() && s.partial[i]; };
    // Solid segments first, then dashed ones: a segment is dashed when either end is partial.
    for (bool dashed : {false, true}) {
      const double dash[] = {6, 4};
      cairo_set_dash(cr, dash, dashed ? 2 : 0, 0);
      bool pen_down = false;
      for (size_t i = 0; i + 1 < s.x.size(); ++i) {
        if (!ok(i) || !ok(i + 1) || (partial(i) || partial(i + 1)) != dashed) {
          pen_down = false;
          continue;
        }
        if (!pen_down) cairo_move_to(cr, ax.px(s.x[i]), ax.py(s.y[i]));
        cairo_line_to(cr, ax.px(s.x[i + 1]), ax.py(s.y[i + 1]));
        pen_down = true;
      }
      cairo_stroke(cr);
    }
    cairo_set_dash(cr, nullptr, 0, 0);
    size_t drawn = 0;
    for (size_t i = 0; i < s.x.size(); ++i) drawn += ok(i);
    if (drawn == 1)  // a single point has no line: show it as a dot
      for (size_t i = 0; i < s.x.size(); ++i)
        if (ax.usable(s.x[i]) && std::isfinite(s.y[i])) {
          cairo_arc(cr, ax.px(s.x[i]), ax.py(s.y[i]), 3.5, 0, 2 * M_PI);
          cairo_fill(cr);
        }
  }
}

// Event markers: dashed line, label running down its right side on a light backing.
void draw_markers(cairo_t* cr, const PlotPanel& panel, const Box& box, const Axes& ax) {
  set_font(cr, kMarkerSize);
  for (const auto& m : panel.markers) {
    if (!ax.usable(m.x)) continue;
    const double x = std::round(ax.px(m.x)) + 0.5;
    const double dash[] = {5, 4};
    cairo_set_dash(cr, dash, 2, 0);
    cairo_set_line_width(cr, 1.5);
    set_color(cr, palette_color(m.color), 0.9);
    cairo_move_to(cr, x, box.y);
    cairo_line_to(cr, x, box.y + box.h);
    cairo_stroke(cr);
    cairo_set_dash(cr, nullptr, 0, 0);
    const std::string label = fit_text(cr, m.label, box.h - 12);
    cairo_save(cr);
    cairo_translate(cr, x + 3, box.y + 6);
    cairo_rotate(cr, M_PI / 2);  // reads top to bottom; glyphs extend to the right of the line
    cairo_set_source_rgba(cr, 1, 1, 1, 0.8);
    cairo_rectangle(cr, -2, -kMarkerSize - 1, text_width(cr, label) + 4, kMarkerSize + 4);
    cairo_fill(cr);
    set_color(cr, palette_color(m.color));
    show_text(cr, label, 0, -2);
    cairo_restore(cr);
  }
}

// Frame, then the legend outside it on the right.
void draw_legend(cairo_t* cr, const PlotPanel& panel, const Box& box, double legend_w) {
  cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, std::round(box.x) + 0.5, std::round(box.y) + 0.5, std::round(box.w), std::round(box.h));
  cairo_stroke(cr);
  set_font(cr, kLegendSize);
  double ly = box.y + 12;
  for (const auto& s : panel.series) {
    const double lx = box.x + box.w + 14;
    set_color(cr, palette_color(s.color), 0.2);
    cairo_rectangle(cr, lx, ly - 6, 22, 12);
    cairo_fill(cr);
    set_color(cr, palette_color(s.color));
    cairo_set_line_width(cr, 2.5);
    cairo_move_to(cr, lx, ly);
    cairo_line_to(cr, lx + 22, ly);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    show_text(cr, fit_text(cr, s.label, legend_w - 42), lx + 28, ly + 4.5);
    ly += 21;
  }
}

void draw_panel(cairo_t* cr, const PlotPanel& panel, const Box& area) {
  const PanelLayout layout = layout_panel(cr, panel, area);
  draw_axes(cr, panel, area, layout);
  // Bands first, then lines on top, clipped to the plot box.
  cairo_save(cr);
  cairo_rectangle(cr, layout.box.x, layout.box.y, layout.box.w, layout.box.h);
  cairo_clip(cr);
  draw_bands(cr, panel, layout.axes);
  draw_lines(cr, panel, layout.axes);
  draw_markers(cr, panel, layout.box, layout.axes);
  cairo_restore(cr);
  draw_legend(cr, panel, layout.box, layout.legend_w);
}

int figure_height(const Figure& f) {
  return (f.title.empty() ? 0 : 34) + (f.note.empty() ? 0 : 20) + f.panel_height * static_cast<int>(f.panels.size());
}

void draw_figure(cairo_t* cr, const Figure& f) {
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  double y = 0;
  if (!f.title.empty()) {
    set_font(cr, kTitleSize, true);
    cairo_set_source_rgb(cr, 0.05, 0.05, 0.05);
    show_text(cr, fit_text(cr, f.title, f.width - 24), 14, 26);
    y += 34;
  }
  if (!f.note.empty()) {
    set_font(cr, kTickSize);
    cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
    show_text(cr, fit_text(cr, f.note, f.width - 24), 14, y + 12);
    y += 20;
  }
  for (const auto& panel : f.panels) {
    draw_panel(cr, panel, Box{0, y, static_cast<double>(f.width), static_cast<double>(f.panel_height)});
    y += f.panel_height;
  }
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(hi > lo)) return {lo, lo + 1};
  const double raw = (hi - lo) / std::max(1, target - 1);
  const double magnitude = std::pow(10, std::floor(std::log10(raw)));
  double spacing = magnitude;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * magnitude >= raw * 0.999) {
      spacing = m * magnitude;
      break;
    }
  std::vector<double> ticks;
  const double first = std::floor(lo / spacing + 1e-9), last = std::ceil(hi / spacing - 1e-9);
  for (double k = first; k <= last + 0.5; ++k) ticks.push_back(k * spacing);
  if (ticks.size() < 2) ticks.push_back(ticks.back() + spacing);
  return ticks;
}

std::vector<double> log_ticks(double lo, double hi) {
  const int k0 = static_cast<int>(std::floor(std::log10(lo))), k1 = static_cast<int>(std::ceil(std::log10(hi)));
  const bool decades_only = k1 - k0 > 3;
  std::vector<double> ticks;
  for (int k = k0; k <= k1; ++k)
    for (double m : {1.0, 2.0, 5.0}) {
      const double v = m * std::pow(10, k);
      if ((m == 1 || !decades_only) && v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) ticks.push_back(v);
    }
  if (ticks.size() >= 3) return ticks;
  ticks.clear();
  for (double v : nice_ticks(lo, hi, 5))
    if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) ticks.push_back(v);
  return ticks;
}

std::string tick_label(double value, double spacing) {
  if (std::fabs(value) < spacing * 1e-6) value = 0;  // -0 and rounding noise
  const char* suffix = "";
  double scale = 1;
  // The largest unit that needs at most one decimal (0.5M rather than 500k); plain below 1000.
  if (spacing >= 1e8) scale = 1e9, suffix = "G";
  else if (spacing >= 1e5) scale = 1e6, suffix = "M";
  else if (spacing >= 1e3) scale = 1e3, suffix = "k";
  char text[64];
  if (value == 0) return "0";
  std::snprintf(text, sizeof(text), "%.*f%s", decimals_for(spacing / scale), value / scale, suffix);
  return text;
}

std::vector<std::string> write_figure(const Figure& figure, const std::string& stem) {
  const CanvasSpec spec{static_cast<double>(figure.width), static_cast<double>(figure_height(figure)), "plot"};
  return write_png_and_svg(stem, spec, [&](cairo_t* cr) { draw_figure(cr, figure); });
}

}  // namespace ssmax
