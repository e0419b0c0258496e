#include "data/sources.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "data/line_splitter.h"
#include "util/errors.h"

namespace ssmax {
namespace {

namespace fs = std::filesystem;

constexpr size_t kReadBlock = 1 << 20;     // raw bytes per read()
constexpr size_t kInflateBlock = 1 << 18;  // decompressed bytes per inflate() call
// A record is parsed whole, and parsing costs a few times its size; past this, memory would follow the input.
constexpr size_t kMaxRecordBytes = size_t{64} << 20;

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Splits decompressed bytes into records and hands each record's text on as one document.
class JsonLinesReader {
 public:
  JsonLinesReader(const std::string& path, const std::string& field, const TextSink& sink)
      : path_(path), field_(field), sink_(sink) {}

  void add(std::string_view bytes) {
    lines_.add(bytes, [this](std::string_view line) { record(line); });
    if (lines_.unfinished().size() > kMaxRecordBytes) refuse_long_record(line_number_ + 1);
  }

  void finish() {
    lines_.finish([this](std::string_view line) { record(line); });
  }

 private:
  void record(std::string_view line) {
    ++line_number_;
    if (line.size() > kMaxRecordBytes) refuse_long_record(line_number_);
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) return;  // blank lines carry no record
    const nlohmann::json value = nlohmann::json::parse(line, nullptr, false);
    if (value.is_discarded() || !value.is_object())
      throw UsageError(where() + ": not a JSON object (a JSON Lines source holds one object per line)");
    const auto text = value.find(field_);
    if (text == value.end() || !text->is_string()) {
      std::string keys;
      for (const auto& item : value.items()) keys += (keys.empty() ? "" : ", ") + item.key();
      throw UsageError(where() + ": no string field \"" + field_ +
                       "\" (data.text_field; this record has: " + (keys.empty() ? "no fields" : keys) + ")");
    }
    const auto& document = text->get_ref<const std::string&>();
    const bool add_newline = !document.empty() && document.back() != '\n';
    sink_(document, !add_newline);
    if (add_newline) sink_("\n", true);
  }

  std::string where() const { return path_ + ":" + std::to_string(line_number_); }

  [[noreturn]] void refuse_long_record(uint64_t line) const {
    throw UsageError(path_ + ":" + std::to_string(line) + ": a JSON Lines record longer than " +
                     std::to_string(kMaxRecordBytes >> 20) +
                     " MiB (records are parsed whole, in memory); split its text into several records, or give it "
                     "as a plain text file, which is read in bounded memory whatever its line lengths");
  }

  const std::string& path_;
  const std::string& field_;
  const TextSink& sink_;
  LineSplitter lines_;
  uint64_t line_number_ = 0;
};

// Plain text under data.text_documents = "blank_line": a line holding nothing but spaces, tabs or '\r' ends the
// document before it and is itself dropped (it belongs to neither document; several in a row, or one at the start
// of a file, end nothing more). Text passes through without copying except the blank-so-far start of a line cut
// by a read block, held until its line shows whether it is blank.
class BlankLineDocuments {
 public:
  explicit BlankLineDocuments(const TextSink& sink) : sink_(sink) {}

  void add(std::string_view text) {
    size_t from = 0;  // text[from, at) is document text not yet handed on
    for (size_t at = 0; at < text.size();) {
      const size_t nl = text.find('\n', at);
      const size_t end = nl == std::string_view::npos ? text.size() : nl;
      if (line_blank_) {
        const std::string_view line = text.substr(at, end - at);
        if (line.find_first_not_of(" \t\r") != std::string_view::npos) {
          line_blank_ = false;
          if (!held_.empty()) {  // the line began in an earlier block, so from == at == 0
            deliver(held_, false);
            held_.clear();
          }
        } else if (nl == std::string_view::npos) {  // blank so far, cut by the block: hold it
          if (at > from) deliver(text.substr(from, at - from), false);
          held_.append(line);
          return;
        } else {  // a blank line: the document before it ends
          if (at > from || open_) deliver(text.substr(from, at - from), true);
          held_.clear();
          from = at = nl + 1;
          continue;
        }
      }
      if (nl == std::string_view::npos) break;
      line_blank_ = true;
      at = nl + 1;
    }
    if (text.size() > from) deliver(text.substr(from), false);
  }

  // A blank last line without its '\n' ends nothing and is dropped too.
  void finish() { held_.clear(); }
  char last_char() const { return last_char_; }

 private:
  void deliver(std::string_view text, bool document_end) {
    if (!text.empty()) last_char_ = text.back();
    open_ = !document_end;
    sink_(text, document_end);
  }

  const TextSink& sink_;
  std::string held_;
  bool line_blank_ = true, open_ = false;
  char last_char_ = '\n';
};

class Inflater {
 public:
  explicit Inflater(const std::string& path) : path_(path), out_(kInflateBlock) {
    // 16 + MAX_WBITS: a gzip header and trailer, not a raw zlib stream.
    if (inflateInit2(&z_, 16 + MAX_WBITS) != Z_OK) throw RuntimeFailure(path + ": cannot start zlib");
  }
  ~Inflater() { inflateEnd(&z_); }

  template <typename Deliver>
  void add(const char* data, size_t n, Deliver&& deliver) {
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data));
    z_.avail_in = static_cast<uInt>(n);
    while (z_.avail_in > 0 || z_.avail_out == 0) {
      if (ended_) {  // another gzip member follows: concatenated .gz files are valid gzip
        if (z_.avail_in == 0) break;
        if (inflateReset(&z_) != Z_OK) throw RuntimeFailure(path_ + ": zlib reset failed");
        ended_ = false;
      }
      z_.next_out = reinterpret_cast<Bytef*>(out_.data());
      z_.avail_out = static_cast<uInt>(out_.size());
      const int rc = inflate(&z_, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        ended_ = true;
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        throw RuntimeFailure(path_ + ": cannot decompress (" + (z_.msg ? z_.msg : "zlib error " + std::to_string(rc)) +
                             "); is it a complete gzip file?");
      }
      const size_t produced = out_.size() - z_.avail_out;
      if (produced > 0) deliver(std::string_view(out_.data(), produced));
      if (rc == Z_BUF_ERROR) break;  // needs more input
    }
  }

  bool ended() const { return ended_; }

 private:
  const std::string& path_;
  z_stream z_{};
  std::vector<char> out_;
  bool ended_ = false;
};

}  // namespace

SourceFile stat_source(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw RuntimeFailure(path + ": cannot stat: " + std::strerror(errno));
  return {path, static_cast<uint64_t>(st.st_size),
          static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

bool is_json_lines(const std::string& path) { return ends_with(path, ".jsonl") || ends_with(path, ".jsonl.gz"); }

std::vector<SourceFile> list_sources(const DataConfig& data) {
  std::error_code ec;
  const fs::path cache = fs::weakly_canonical(data.dataset_dir, ec);
  std::vector<SourceFile> files;
  for (const auto& source : data.sources) {
    if (!fs::exists(source, ec)) {
      throw UsageError("data.sources: '" + source +
                       "' does not exist (give a text file or directory; for the default corpus "
                       "run scripts/fetch_kjv.sh)");
    }
    if (fs::is_regular_file(source, ec)) {
      files.push_back(stat_source(source));
      continue;
    }
    if (!fs::is_directory(source, ec))
      throw UsageError("data.sources: '" + source + "' is neither a regular file nor a directory");
    // The dataset cache is skipped: it would feed old corpora back in when a source directory contains it.
    std::vector<std::string> found;
    for (auto it = fs::recursive_directory_iterator(source); it != fs::recursive_directory_iterator(); ++it) {
      const std::string name = it->path().filename().string();
      if (name[0] == '.' || fs::weakly_canonical(it->path(), ec) == cache) {
        if (it->is_directory(ec)) it.disable_recursion_pending();
        continue;
      }
      if (it->is_regular_file(ec)) found.push_back(it->path().string());
    }
    std::sort(found.begin(), found.end());
    for (const auto& f : found) files.push_back(stat_source(f));
  }
  return files;
}

void stream_source_text(const std::string& path, const std::string& text_field, const TextSink& sink,
                        Hasher64& raw_hash, uint64_t& raw_bytes_read, bool blank_line_documents) {
  const bool gzip = ends_with(path, ".gz");
  const bool json_lines = is_json_lines(path);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw RuntimeFailure(path + ": cannot open for reading: " + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);

  JsonLinesReader records(path, text_field, sink);
  BlankLineDocuments paragraphs(sink);
  const bool split_blank = blank_line_documents && !json_lines;
  char last_char = '\n';
  const auto deliver = [&](std::string_view text) {
    if (json_lines) return records.add(text);
    if (split_blank) return paragraphs.add(text);
    last_char = text.back();
    sink(text, false);
  };
  Inflater inflater(path);
  std::vector<char> block(kReadBlock);
  uint64_t raw = 0;
  for (;;) {
    const ssize_t n = ::read(fd, block.data(), block.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw RuntimeFailure(path + ": read failed: " + std::strerror(errno));
    }
    if (n == 0) break;
    raw_hash.update(block.data(), static_cast<size_t>(n));
    raw_bytes_read += static_cast<uint64_t>(n);
    raw += static_cast<uint64_t>(n);
    if (gzip) {
      inflater.add(block.data(), static_cast<size_t>(n), deliver);
    } else {
      deliver(std::string_view(block.data(), static_cast<size_t>(n)));
    }
  }
  if (gzip && raw > 0 && !inflater.ended())
    throw RuntimeFailure(path + ": the gzip stream is truncated or corrupt (it ends before its trailer)");
  if (split_blank) {
    paragraphs.finish();
    last_char = paragraphs.last_char();
  }
  if (json_lines) {
    records.finish();
  } else if (last_char != '\n') {
    sink("\n", false);
  }
  sink({}, true);
}

}  // namespace ssmax
