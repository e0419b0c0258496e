#pragma once
// What every harness shares: the bytes as a file (the readers under test open paths, as the program does), and the
// property under test: a reader of outside bytes either succeeds or throws UsageError / RuntimeFailure with one
// non-empty line of text. Anything else (another exception type, a crash, a sanitizer report) is a finding.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <string>
#include <vector>

#include "util/errors.h"

namespace ssmax::fuzz {

// A directory of this process's own (several harnesses may run at once), removed by nobody: it holds a few files
// that each input overwrites.
inline const std::string& scratch_dir() {
  static const std::string dir = [] {
    std::string base = std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp";
    std::string tmpl = base + "/ssmax-fuzz-XXXXXX";
    if (!::mkdtemp(tmpl.data())) {
      std::perror("mkdtemp");
      std::abort();
    }
    spdlog::set_level(spdlog::level::off);  // warnings about damaged inputs are expected, by the million
    return tmpl;
  }();
  return dir;
}

inline std::string write_scratch(const std::string& name, const std::string& bytes) {
  const std::string path = scratch_dir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out.flush()) {
    std::perror(path.c_str());
    std::abort();
  }
  return path;
}

[[noreturn]] inline void finding(const char* what, const std::string& detail) {
  std::fprintf(stderr, "FINDING: %s: %s\n", what, detail.c_str());
  std::abort();
}

inline void check_message(const std::string& message) {
  if (message.empty()) finding("empty error message", "");
  if (message.find('\n') != std::string::npos) finding("error message of several lines", message);
}

// Runs `read`; a clear error is a pass, anything else aborts with the reason.
template <class Read>
void expect_result_or_clear_error(Read&& read) {
  try {
    read();
  } catch (const UsageError& e) {
    check_message(e.what());
  } catch (const RuntimeFailure& e) {
    check_message(e.what());
  } catch (const std::exception& e) {
    finding("unexpected exception type (the user would see no clear error)", e.what());
  }
}

inline std::string as_string(const uint8_t* data, size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

// Removes the leading lines "@set KEY=VALUE" from `text` and returns their KEY=VALUE parts: how the config and study
// harnesses pass the command line's --set overrides along with the file.
inline std::vector<std::string> take_overrides(std::string& text) {
  std::vector<std::string> overrides;
  while (text.rfind("@set ", 0) == 0) {
    const size_t end = text.find('\n');
    overrides.push_back(text.substr(5, end == std::string::npos ? std::string::npos : end - 5));
    text = end == std::string::npos ? "" : text.substr(end + 1);
  }
  return overrides;
}

}  // namespace ssmax::fuzz
