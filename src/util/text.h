#pragma once
// Splitting and joining lists as users type them ("a,b,c"), and dotted keys ("model.attention.s_init").
#include <string>
#include <vector>

namespace ssmax {

// Every field between separators, empty ones included: split("a,,b", ',') = {"a", "", "b"}; split("", ',') = {}.
std::vector<std::string> split(const std::string& text, char separator);

// A list typed on the command line: the non-empty items of `text` split at commas.
std::vector<std::string> split_list(const std::string& text);

std::string join(const std::vector<std::string>& items, const std::string& separator = ", ");

// The text with every character but letters, digits, '-', '_' and '.' replaced by '_': a label as a file name.
std::string file_safe(std::string text);

}  // namespace ssmax
