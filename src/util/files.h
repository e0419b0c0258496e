#pragma once
#include <string>

namespace ssmax {

// Replaces `path` with `text` atomically: temp file in the same directory, fsync, rename.
// Throws RuntimeFailure naming the path on failure; the old file is untouched then.
void write_file_atomic(const std::string& path, const std::string& text);

// Whole file as a string; throws RuntimeFailure naming the path if it cannot be read.
std::string read_file(const std::string& path);

}  // namespace ssmax
