#pragma once
// The two kinds of failure a user sees, and the exit code each maps to (src/cli/main.cpp).
#include <stdexcept>
#include <string>

namespace ssmax {

// Bad command line or config: the user must change what they typed. Exit code 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Something failed while running (I/O, corrupt data, non-finite loss). Exit code 1.
struct RuntimeFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace ssmax
