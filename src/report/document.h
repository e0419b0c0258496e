#pragma once
// A report as data — sections of paragraphs, tables and figures — rendered twice from the same content: Markdown
// (figures linked as files beside it) and one self-contained HTML page (figures inlined as data: URIs, no scripts,
// no network), so the two can never disagree. Torch-free.
#include <optional>
#include <string>
#include <vector>

namespace ssmax {

struct DocumentTable {
  std::string caption;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};

struct DocumentFigure {
  std::string png_path;  // relative to the document's directory
  std::string caption;
};

// A section's blocks in order: each is a paragraph, a table or a figure (exactly one is set).
struct DocumentBlock {
  std::string paragraph;  // plain text; `code` renders it as a preformatted block
  bool code = false;
  std::vector<std::string> bullets;
  std::optional<DocumentTable> table;
  std::optional<DocumentFigure> figure;
};

struct DocumentSection {
  std::string title;
  std::vector<DocumentBlock> blocks;
  DocumentSection& text(std::string paragraph);
  DocumentSection& code(std::string text);
  DocumentSection& list(std::vector<std::string> bullets);
  DocumentSection& add(DocumentTable table);
  DocumentSection& figure(std::string png_path, std::string caption);
};

struct Document {
  std::string title;
  std::vector<DocumentSection> sections;
};

std::string render_markdown(const Document& document);
// Reads every figure's PNG from `base_dir` to inline it; a missing figure becomes a note in its place.
std::string render_html(const Document& document, const std::string& base_dir);

// RFC 4648 base64 of raw bytes (for data: URIs).
std::string base64_encode(const std::string& bytes);

}  // namespace ssmax
