#include "report/canvas.h"

#include <cairo-svg.h>

#include <algorithm>

#include "util/errors.h"
#include "util/files.h"

namespace ssmax {
namespace {

constexpr const char* kFont = "DejaVu Sans";

void check(cairo_status_t status, const std::string& path, const std::string& what) {
  if (status != CAIRO_STATUS_SUCCESS)
    throw RuntimeFailure(path + ": cannot draw the " + what + " (" + cairo_status_to_string(status) + ")");
}

// Cairo keeps a failed drawing's error on the context, not the surface: it is read here, before the
// context goes, so the caller can report it instead of the write's.
cairo_status_t draw_on(cairo_surface_t* surface, const std::function<void(cairo_t*)>& draw) {
  cairo_t* cr = cairo_create(surface);
  draw(cr);
  const cairo_status_t drawn = cairo_status(cr);
  cairo_destroy(cr);
  return drawn;
}

// Cairo writes through this into memory; the bytes then go to disk as every other file does (util/files.h), so a
// full disk or a signal never leaves half a plot where the previous one was.
cairo_status_t append_bytes(void* bytes, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(bytes)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

}  // namespace

Rgb palette_color(size_t index) {
  // Okabe & Ito (2008); yellow last because it is faint on white.
  static const Rgb colors[] = {{0.000, 0.447, 0.698}, {0.835, 0.369, 0.000}, {0.000, 0.620, 0.451},
                               {0.800, 0.475, 0.655}, {0.902, 0.624, 0.000}, {0.337, 0.706, 0.914},
                               {0.000, 0.000, 0.000}, {0.941, 0.894, 0.259}};
  return colors[index % 8];
}

Rgb viridis(double t) {
  // Five stops, interpolated linearly.
  static const Rgb stops[] = {{0.267, 0.005, 0.329},
                              {0.231, 0.322, 0.545},
                              {0.129, 0.569, 0.549},
                              {0.369, 0.788, 0.384},
                              {0.993, 0.906, 0.144}};
  t = std::clamp(t, 0.0, 1.0) * 4;
  const int i = std::min(3, static_cast<int>(t));
  const double f = t - i;
  return {stops[i].r + f * (stops[i + 1].r - stops[i].r), stops[i].g + f * (stops[i + 1].g - stops[i].g),
          stops[i].b + f * (stops[i + 1].b - stops[i].b)};
}

void set_color(cairo_t* cr, const Rgb& c, double alpha) { cairo_set_source_rgba(cr, c.r, c.g, c.b, alpha); }

void set_font(cairo_t* cr, double size, bool bold) {
  cairo_select_font_face(cr, kFont, CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
}

double text_width(cairo_t* cr, const std::string& text) {
  cairo_text_extents_t e;
  cairo_text_extents(cr, text.c_str(), &e);
  return e.x_advance;
}

void show_text(cairo_t* cr, const std::string& text, double x, double y, double align) {
  cairo_move_to(cr, x - align * text_width(cr, text), y);
  cairo_show_text(cr, text.c_str());
}

std::string fit_text(cairo_t* cr, std::string text, double max_width) {
  if (text_width(cr, text) <= max_width) return text;
  while (!text.empty() && text_width(cr, text + "…") > max_width) {
    while (!text.empty() && (static_cast<unsigned char>(text.back()) & 0xC0) == 0x80) text.pop_back();
    if (!text.empty()) text.pop_back();
  }
  return text + "…";
}

std::vector<std::string> write_png_and_svg(const std::string& stem, const CanvasSpec& spec,
                                           const std::function<void(cairo_t*)>& draw) {
  const std::string png = stem + ".png", svg = stem + ".svg";
  std::string png_bytes, svg_bytes;
  {
    cairo_surface_t* surface =
        cairo_image_surface_create(CAIRO_FORMAT_RGB24, static_cast<int>(spec.width), static_cast<int>(spec.height));
    const cairo_status_t drawn = draw_on(surface, draw);
    const cairo_status_t written =
        drawn == CAIRO_STATUS_SUCCESS ? cairo_surface_write_to_png_stream(surface, append_bytes, &png_bytes) : drawn;
    cairo_surface_destroy(surface);
    check(written, png, spec.what);
  }
  {
    cairo_surface_t* surface = cairo_svg_surface_create_for_stream(append_bytes, &svg_bytes, spec.width, spec.height);
    const cairo_status_t drawn = draw_on(surface, draw);
    cairo_surface_finish(surface);  // the SVG is complete only after finish
    const cairo_status_t written = drawn == CAIRO_STATUS_SUCCESS ? cairo_surface_status(surface) : drawn;
    cairo_surface_destroy(surface);
    check(written, svg, spec.what);
  }
  write_file_atomic(png, png_bytes);
  write_file_atomic(svg, svg_bytes);
  return {png, svg};
}

}  // namespace ssmax
