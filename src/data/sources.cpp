#include "data/sources.h"

#include <zlib.h>

#include <nlohmann/json.hpp>

#include "util/errors.h"

namespace ssmax {
namespace {

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The file's bytes, gunzipped when it is gzip (zlib reads plain files through unchanged).
std::string read_maybe_gzip(const std::string& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (!file) throw RuntimeFailure(path + ": cannot open for reading");
  gzbuffer(file, 1 << 17);
  std::string out;
  char buffer[1 << 16];
  for (;;) {
    const int n = gzread(file, buffer, sizeof buffer);
    if (n < 0) {
      int code = 0;
      const std::string why = gzerror(file, &code);
      gzclose(file);
      throw RuntimeFailure(path + ": cannot decompress (" + why + "); is it a complete gzip file?");
    }
    if (n == 0) break;
    out.append(buffer, static_cast<size_t>(n));
  }
  // A truncated gzip stream reads as a short file without an error from gzread; gzclose reports it.
  if (gzclose(file) != Z_OK) throw RuntimeFailure(path + ": the gzip stream is truncated or corrupt");
  return out;
}

std::string documents_of_json_lines(const std::string& path, const std::string& content, const std::string& field) {
  std::string out;
  size_t line_number = 0;
  for (size_t start = 0; start < content.size();) {
    size_t end = content.find('\n', start);
    if (end == std::string::npos) end = content.size();
    const std::string line = content.substr(start, end - start);
    start = end + 1;
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank lines carry no record
    const auto where = path + ":" + std::to_string(line_number);
    const nlohmann::json record = nlohmann::json::parse(line, nullptr, false);
    if (record.is_discarded() || !record.is_object())
      throw UsageError(where + ": not a JSON object (a JSON Lines source holds one object per line)");
    const auto value = record.find(field);
    if (value == record.end() || !value->is_string()) {
      std::string keys;
      for (const auto& item : record.items()) keys += (keys.empty() ? "" : ", ") + item.key();
      throw UsageError(where + ": no string field \"" + field + "\" (data.text_field; this record has: " +
                       (keys.empty() ? "no fields" : keys) + ")");
    }
    const auto& text = value->get_ref<const std::string&>();
    out += text;
    if (!text.empty() && text.back() != '\n') out += '\n';
  }
  return out;
}

}  // namespace

std::string read_source_text(const std::string& path, const std::string& text_field) {
  const std::string content = read_maybe_gzip(path);
  const std::string name = ends_with(path, ".gz") ? path.substr(0, path.size() - 3) : path;
  return ends_with(name, ".jsonl") ? documents_of_json_lines(path, content, text_field) : content;
}

}  // namespace ssmax
