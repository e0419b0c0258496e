#include "eval/heatmap.h"

// Full paths: cairo's include directory is kept off the torch targets (it would invalidate their PCH).
#include <cairo/cairo-svg.h>
#include <cairo/cairo.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "util/errors.h"

namespace ssmax {
namespace {

constexpr const char* kFont = "DejaVu Sans";

struct Color {
  double r, g, b;
};

// Viridis at five stops, interpolated: perceptually even and readable in greyscale.
Color colormap(double t) {
  static const Color stops[] = {{0.267, 0.005, 0.329}, {0.231, 0.322, 0.545}, {0.129, 0.569, 0.549},
                                {0.369, 0.788, 0.384}, {0.993, 0.906, 0.144}};
  t = std::clamp(t, 0.0, 1.0) * 4;
  const int i = std::min(3, static_cast<int>(t));
  const double f = t - i;
  return {stops[i].r + f * (stops[i + 1].r - stops[i].r), stops[i].g + f * (stops[i + 1].g - stops[i].g),
          stops[i].b + f * (stops[i + 1].b - stops[i].b)};
}

void text_at(cairo_t* cr, const std::string& text, double x, double y, double size, double align, bool bold = false) {
  cairo_select_font_face(cr, kFont, CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
  cairo_text_extents_t e;
  cairo_text_extents(cr, text.c_str(), &e);
  cairo_move_to(cr, x - align * e.x_advance, y);
  cairo_show_text(cr, text.c_str());
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
      const Color color = std::isfinite(value) ? colormap((value - h.lo) / span) : Color{0.9, 0.9, 0.9};
      cairo_set_source_rgb(cr, color.r, color.g, color.b);
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
    const Color color = colormap(1 - i / 99.0);
    cairo_set_source_rgb(cr, color.r, color.g, color.b);
    cairo_rectangle(cr, bar_x, l.top + bar_h * i / 100, 16, bar_h / 100 + 0.5);
    cairo_fill(cr);
  }
  cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
  text_at(cr, format_value(h.format, h.hi), bar_x + 22, l.top + 10, 11, 0);
  text_at(cr, format_value(h.format, h.lo), bar_x + 22, l.top + bar_h, 11, 0);
}

void check(cairo_status_t status, const std::string& path) {
  if (status != CAIRO_STATUS_SUCCESS)
    throw RuntimeFailure(path + ": cannot draw the heatmap (" + cairo_status_to_string(status) + ")");
}

}  // namespace

std::vector<std::string> write_heatmap(const Heatmap& h, const std::string& stem) {
  const Layout l = layout_for(h);
  const std::string png = stem + ".png", svg = stem + ".svg";
  {
    cairo_surface_t* surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, static_cast<int>(l.width),
                                                          static_cast<int>(l.height));
    cairo_t* cr = cairo_create(surface);
    draw(cr, h, l);
    const cairo_status_t drawn = cairo_status(cr);
    cairo_destroy(cr);
    const cairo_status_t written = drawn == CAIRO_STATUS_SUCCESS ? cairo_surface_write_to_png(surface, png.c_str()) : drawn;
    cairo_surface_destroy(surface);
    check(written, png);
  }
  {
    cairo_surface_t* surface = cairo_svg_surface_create(svg.c_str(), l.width, l.height);
    cairo_t* cr = cairo_create(surface);
    draw(cr, h, l);
    const cairo_status_t drawn = cairo_status(cr);
    cairo_destroy(cr);
    cairo_surface_finish(surface);
    const cairo_status_t written = drawn == CAIRO_STATUS_SUCCESS ? cairo_surface_status(surface) : drawn;
    cairo_surface_destroy(surface);
    check(written, svg);
  }
  return {png, svg};
}

}  // namespace ssmax
