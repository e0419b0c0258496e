#pragma once
// data.sources: the files they name, and each file streamed as text in bounded memory.
//
// Plain text is read as it is: one document per file, ending in a newline (one is added when missing). With
// data.text_documents = "blank_line" a plain file is split instead: every line holding nothing but spaces, tabs or
// '\r' ends the document before it and is dropped (it belongs to neither document, so a document's text ends with
// its last line's newline; runs of blank lines end one document, never make empty ones).
// JSON Lines (a name ending in .jsonl) gives the string field `text_field` of every record, each record one
// document followed by a newline (unless it ends with one). A name that then ends in .gz is gzip-compressed
// either way and is decompressed with zlib as it is read (concatenated gzip members are read one after another).
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "util/hash.h"

namespace ssmax {

struct SourceFile {
  std::string path;
  uint64_t bytes = 0;    // size as stored
  int64_t mtime_ns = 0;  // modification time: with the size, the cache's quick check
};

// Expands data.sources into regular files, each directory read recursively with its files sorted by path (so
// the corpus does not depend on listing order), hidden entries and the dataset cache skipped. Reads no file.
// Throws UsageError for an empty list or a source that does not exist.
std::vector<SourceFile> list_sources(const DataConfig& data);

// Size and modification time of one file; throws RuntimeFailure naming it when it cannot be stat()ed.
SourceFile stat_source(const std::string& path);

bool is_json_lines(const std::string& path);  // *.jsonl or *.jsonl.gz

// Receives a file's text in order; `document_end` is set on the call that ends a document (its text may be empty).
using TextSink = std::function<void(std::string_view text, bool document_end)>;

// Streams `path` into `sink`, holding at most one read block (and one JSON Lines record) in memory; plain text is
// split on blank lines when `blank_line_documents` (JSON Lines records are documents either way). Every byte
// read as stored (before decompression) goes into `raw_hash` and is counted in `raw_bytes_read` as reading goes.
// Throws UsageError naming file:line for a record that is not a JSON object with a string `text_field` or is longer
// than 64 MiB (refused as it is read, before parsing it would take several times that), and RuntimeFailure for
// unreadable, truncated or corrupt files.
void stream_source_text(const std::string& path, const std::string& text_field, const TextSink& sink,
                        Hasher64& raw_hash, uint64_t& raw_bytes_read, bool blank_line_documents = false);

}  // namespace ssmax
