#pragma once
// One source file of data.sources as text. Plain text is read as it is; JSON Lines (name ending in .jsonl) gives
// the string field `text_field` of every record, each record one document followed by a newline (unless it
// ends with one); a name that then ends in .gz is gzip-compressed either way and is decompressed with zlib.
#include <string>

namespace ssmax {

// Throws UsageError naming file and line for a record that is not a JSON object with a string `text_field`,
// RuntimeFailure for unreadable or corrupt files.
std::string read_source_text(const std::string& path, const std::string& text_field);

}  // namespace ssmax
