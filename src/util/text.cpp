#include "util/text.h"

#include <cctype>
#include <cstdio>
#include <sstream>

namespace ssmax {

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::stringstream in(text);
  for (std::string part; std::getline(in, part, separator);) parts.push_back(part);
  return parts;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  for (auto& item : split(text, ','))
    if (!item.empty()) items.push_back(std::move(item));
  return items;
}

std::string join(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : separator) + item;
  return out;
}

std::string short_number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", value);
  return text;
}

std::string file_safe(std::string text) {
  for (char& c : text)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '_';
  return text;
}

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

namespace {

void append_hex_escape(std::string& out, unsigned char c) {
  static const char* digits = "0123456789abcdef";
  out += "\\x";
  out += digits[c >> 4];
  out += digits[c & 15];
}

}  // namespace

std::string quoted_bytes(const std::string& bytes, size_t max_chars) {
  std::string out = "'";
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i == max_chars) return out + "'...";
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') out += static_cast<char>(c);
    else append_hex_escape(out, c);
  }
  return out + "'";
}

std::string escape_controls(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c != 0x7f) out += ch;
    else append_hex_escape(out, c);
  }
  return out;
}

}  // namespace ssmax
