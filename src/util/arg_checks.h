#pragma once
// Range and shape checks of command arguments, shared by every command's one check of its arguments
// (check_arguments next to each command's argument struct, which the command line and `study` both reach). Each
// throws UsageError (exit 2) naming the option and the value. Torch-free.
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "util/errors.h"
#include "util/text.h"

namespace ssmax {

// `value` is finite and within [min, max] (min excluded when `min_exclusive`), else "--x V: must be ...". CLI11's own
// ranges let NaN through (it fails every comparison).
void check_number(const std::string& option, double value, double min,
                  double max = std::numeric_limits<double>::infinity(), bool min_exclusive = false);

// No item twice (`what` names the option or positional). Paths are compared as the files they name, so "run",
// "run/" and "./run" are one.
void check_distinct(const std::string& what, const std::vector<std::string>& items, bool as_paths);

// An output directory option naming an existing file would fail only when the results are written, after the work.
void check_out_dir(const std::string& option, const std::string& dir);

// No value twice in a list option ("--lengths 512,512" would be evaluated, and averaged, twice).
template <class T>
void check_no_repeats(const std::string& option, const std::vector<T>& values) {
  for (size_t i = 0; i < values.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (values[i] == values[j]) {
        std::string text;
        if constexpr (std::is_floating_point_v<T>) text = short_number(values[i]);
        else text = std::to_string(values[i]);
        throw UsageError(option + ": " + text + " is given twice");
      }
}

}  // namespace ssmax
