#pragma once
// Splitting and joining lists as users type them ("a,b,c"), numbers and bytes written into messages and names.
#include <string>
#include <vector>

namespace ssmax {

// Every field between separators, empty ones included: split("a,,b", ',') = {"a", "", "b"}; split("", ',') = {}.
std::vector<std::string> split(const std::string& text, char separator);

// A list typed on the command line: the non-empty items of `text` split at commas.
std::vector<std::string> split_list(const std::string& text);

std::string join(const std::vector<std::string>& items, const std::string& separator = ", ");

// A number as printf's "%g" writes it (six significant digits, no trailing zeros): 50, 0.05, 1e-06, inf, nan.
std::string short_number(double value);

// The text with every character but letters, digits, '-', '_' and '.' replaced by '_': a label as a file name.
std::string file_safe(std::string text);

// Up to the first newline: the summary of a library's multi-line error (torch appends a backtrace).
std::string first_line(const std::string& text);

// Bytes read from a file, fit for a one-line message: in quotes, control and non-ASCII bytes as \xNN, cut after
// `max_chars` characters with "...".
std::string quoted_bytes(const std::string& bytes, size_t max_chars = 60);

// The text with control bytes (a newline in a JSON key, say) written as \xNN: an error message that quotes a file's
// keys or values stays one line.
std::string escape_controls(const std::string& text);

}  // namespace ssmax
