#include "report/document.h"

#include <algorithm>
#include <cstdint>
#include <filesystem>

#include "util/files.h"

namespace ssmax {
namespace fs = std::filesystem;

DocumentSection& DocumentSection::text(std::string paragraph) {
  blocks.push_back({std::move(paragraph), false, {}, std::nullopt, std::nullopt});
  return *this;
}
DocumentSection& DocumentSection::code(std::string text) {
  blocks.push_back({std::move(text), true, {}, std::nullopt, std::nullopt});
  return *this;
}
DocumentSection& DocumentSection::list(std::vector<std::string> bullets) {
  blocks.push_back({"", false, std::move(bullets), std::nullopt, std::nullopt});
  return *this;
}
DocumentSection& DocumentSection::add(DocumentTable table) {
  blocks.push_back({"", false, {}, std::move(table), std::nullopt});
  return *this;
}
DocumentSection& DocumentSection::figure(std::string png_path, std::string caption) {
  blocks.push_back({"", false, {}, std::nullopt, DocumentFigure{std::move(png_path), std::move(caption)}});
  return *this;
}

namespace {

std::string markdown_cell(const std::string& text) {
  std::string out;
  for (char c : text) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out;
}

std::string escape_html(const std::string& text) {
  std::string out;
  for (char c : text) switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  return out;
}

const char* kStyle =
    "body{font-family:system-ui,'DejaVu Sans',sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
    "color:#222;line-height:1.45}table{border-collapse:collapse;margin:0.6em 0 1.2em}"
    "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right;font-variant-numeric:tabular-nums}"
    "th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}caption{text-align:left;"
    "font-weight:600;padding:4px 0}img{max-width:100%;border:1px solid #eee}figcaption{color:#555;"
    "font-size:0.9em}pre{background:#f7f7f7;padding:0.6em;overflow-x:auto}h2{border-bottom:1px solid #ddd}";

}  // namespace

std::string render_markdown(const Document& document) {
  std::string out = "# " + document.title + "\n";
  for (const auto& section : document.sections) {
    out += "\n## " + section.title + "\n";
    for (const auto& block : section.blocks) {
      out += "\n";
      if (block.table) {
        const auto& t = *block.table;
        if (!t.caption.empty()) out += "**" + t.caption + "**\n\n";
        std::string line = "|", rule = "|";
        for (const auto& h : t.header) line += " " + markdown_cell(h) + " |", rule += "---|";
        out += line + "\n" + rule + "\n";
        for (const auto& row : t.rows) {
          line = "|";
          for (const auto& cell : row) line += " " + markdown_cell(cell) + " |";
          out += line + "\n";
        }
      } else if (block.figure) {
        out += "![" + block.figure->caption + "](" + block.figure->png_path + ")\n\n*" + block.figure->caption + "*\n";
      } else if (!block.bullets.empty()) {
        for (const auto& bullet : block.bullets) out += "- " + bullet + "\n";
      } else if (block.code) {
        out += "```\n" + block.paragraph + (block.paragraph.empty() || block.paragraph.back() != '\n' ? "\n" : "") +
               "```\n";
      } else {
        out += block.paragraph + "\n";
      }
    }
  }
  return out;
}

std::string render_html(const Document& document, const std::string& base_dir) {
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" +
                    escape_html(document.title) + "</title><style>" + kStyle + "</style></head><body>\n<h1>" +
                    escape_html(document.title) + "</h1>\n";
  for (const auto& section : document.sections) {
    out += "<h2>" + escape_html(section.title) + "</h2>\n";
    for (const auto& block : section.blocks) {
      if (block.table) {
        const auto& t = *block.table;
        out += "<table>";
        if (!t.caption.empty()) out += "<caption>" + escape_html(t.caption) + "</caption>";
        out += "<tr>";
        for (const auto& h : t.header) out += "<th>" + escape_html(h) + "</th>";
        out += "</tr>\n";
        for (const auto& row : t.rows) {
          out += "<tr>";
          for (const auto& cell : row) out += "<td>" + escape_html(cell) + "</td>";
          out += "</tr>\n";
        }
        out += "</table>\n";
      } else if (block.figure) {
        const fs::path png = fs::path(base_dir) / block.figure->png_path;
        out += "<figure>";
        if (fs::exists(png))
          out += "<img alt=\"" + escape_html(block.figure->caption) + "\" src=\"data:image/png;base64," +
                 base64_encode(read_file(png.string())) + "\">";
        else out += "<p>(figure " + escape_html(block.figure->png_path) + " is missing)</p>";
        out += "<figcaption>" + escape_html(block.figure->caption) + "</figcaption></figure>\n";
      } else if (!block.bullets.empty()) {
        out += "<ul>";
        for (const auto& bullet : block.bullets) out += "<li>" + escape_html(bullet) + "</li>";
        out += "</ul>\n";
      } else if (block.code) {
        out += "<pre>" + escape_html(block.paragraph) + "</pre>\n";
      } else {
        out += "<p>" + escape_html(block.paragraph) + "</p>\n";
      }
    }
  }
  return out + "</body></html>\n";
}

std::string base64_encode(const std::string& bytes) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const size_t n = std::min<size_t>(3, bytes.size() - i);
    uint32_t group = 0;
    for (size_t k = 0; k < 3; ++k) group = (group << 8) | (k < n ? static_cast<unsigned char>(bytes[i + k]) : 0u);
    for (size_t k = 0; k < 4; ++k) out += k <= n ? alphabet[(group >> (18 - 6 * k)) & 63] : '=';
  }
  return out;
}

}  // namespace ssmax
