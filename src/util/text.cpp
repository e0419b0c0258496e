#include "util/text.h"

#include <cctype>

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

std::string file_safe(std::string text) {
  for (char& c : text)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '_';
  return text;
}

}  // namespace ssmax
