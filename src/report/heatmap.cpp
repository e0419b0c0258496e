#include "report/heatmap.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "report/canvas.h"

namespace ssmax {
namespace {

void text_at(cairo_t* cr, const std::string& text, double x, double y, double size, double align, bool bold = false) {
  set_font(cr, size, bold);
  show_text(cr, text, x, y, align);
}

std::string format_value(const std::string& format, double value) {
  if (!std::isfinite(value)) return "–";
  char text[64];
  std::snprintf(text, sizeof text, format.c_str(), value);
  return text;
}

struct Layout {
  double cell_w, cell_h, left, top, width, height;
};

Layout layout_for(const Heatmap& h) {
  Layout l;
  l.cell_w = std::clamp(720.0 / std::max<size_t>(1, h.columns.size()), 44.0, 90.0);
  l.cell_h = std::clamp(480.0 / std::max<size_t>(1, h.rows.size()), 26.0, 60.0);
  l.left = 110;
  l.top = h.note.empty() ? 60 : 80;
  l.width = l.left + l.cell_w * h.columns.size() + 120;  // room for the colour bar
  // Room for the title and note too (about 9.5 and 6.5 pixels per character at their sizes).
  l.width = std::max({l.width, 28 + 9.5 * h.title.size(), 28 + 6.5 * h.note.size()});
  l.height = l.top + l.cell_h * h.rows.size() + 70;
  return l;
}

void draw(cairo_t* cr, const Heatmap& h, const Layout& l) {
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
  text_at(cr, h.title, 14, 26, 16, 0, true);
  if (!h.note.empty()) {
    cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
    text_at(cr, h.note, 14, 48, 12, 0);
  }
  const double span = h.hi > h.lo ? h.hi - h.lo : 1;
  for (size_t r = 0; r < h.rows.size(); ++r) {
    for (size_t c = 0; c < h.columns.size(); ++c) {
      const double value = r < h.values.size() && c < h.values[r].size() ? h.values[r][c] : NAN;
      const double x = l.left + c * l.cell_w, y = l.top + r * l.cell_h;
      const Rgb color = std::isfinite(value) ? viridis((value - h.lo) / span) : Rgb{0.9, 0.9, 0.9};
      set_color(cr, color);
      cairo_rectangle(cr, x, y, l.cell_w - 1, l.cell_h - 1);
      cairo_fill(cr);
      // Dark text on light cells, white on dark ones.
      const double luminance = 0.2126 * color.r + 0.7152 * color.g + 0.0722 * color.b;
      const double ink = luminance > 0.5 ? 0.1 : 1.0;
      cairo_set_source_rgb(cr, ink, ink, ink);
      text_at(cr, format_value(h.format, value), x + l.cell_w / 2, y + l.cell_h / 2 + 4, 11, 0.5);
    }
  }
  cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
  for (size_t r = 0; r < h.rows.size(); ++r)
    text_at(cr, h.rows[r], l.left - 8, l.top + r * l.cell_h + l.cell_h / 2 + 4, 11.5, 1);
  const double grid_bottom = l.top + h.rows.size() * l.cell_h;
  for (size_t c = 0; c < h.columns.size(); ++c)
    text_at(cr, h.columns[c], l.left + c * l.cell_w + l.cell_w / 2, grid_bottom + 18, 11.5, 0.5);
  text_at(cr, h.column_label, l.left + h.columns.size() * l.cell_w / 2, grid_bottom + 44, 13, 0.5);
  cairo_save(cr);
  cairo_translate(cr, 22, l.top + h.rows.size() * l.cell_h / 2);
  cairo_rotate(cr, -M_PI / 2);
  text_at(cr, h.row_label, 0, 0, 13, 0.5);
  cairo_restore(cr);

  // Colour bar with its range.
  const double bar_x = l.left + h.columns.size() * l.cell_w + 30, bar_h = std::max(80.0, h.rows.size() * l.cell_h);
  for (int i = 0; i < 100; ++i) {
    set_color(cr, viridis(1 - i / 99.0));
    cairo_rectangle(cr, bar_x, l.top + bar_h * i / 100, 16, bar_h / 100 + 0.5);
    cairo_fill(cr);
  }
  cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
  text_at(cr, format_value(h.format, h.hi), bar_x + 22, l.top + 10, 11, 0);
  text_at(cr, format_value(h.format, h.lo), bar_x + 22, l.top + bar_h, 11, 0);
}

}  // namespace

std::vector<std::string> write_heatmap(const Heatmap& h, const std::string& stem) {
  const Layout l = layout_for(h);
  return write_png_and_svg(stem, {l.width, l.height, "heatmap"}, [&](cairo_t* cr) { draw(cr, h, l); });
}

}  // namespace ssmax
