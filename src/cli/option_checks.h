#pragma once
// Checks of the subcommands' own options that CLI11 cannot express, run before any work: a value outside its
// documented range (CLI11's ranges let NaN through: it fails every comparison) and an input that would otherwise be
// quietly replaced or counted twice. Each throws UsageError (exit 2) naming the option and the value.
#include <limits>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "eval/eval_commands.h"
#include "util/errors.h"

namespace ssmax {

// `value` is finite and within [min, max] (min excluded when `min_exclusive`), else "--x V: must be ...".
void check_number(const std::string& option, double value, double min,
                  double max = std::numeric_limits<double>::infinity(), bool min_exclusive = false);

// --device and --threads of the commands that load a model for evaluation.
void add_runtime_options(CLI::App& app, EvalRuntimeArgs& runtime);

// --device is auto, cpu, cuda or cuda:N; --threads is in [0, 1024], as the config keys are.
void check_runtime(const EvalRuntimeArgs& runtime);

// No item twice (`what` names the option or positional). Paths are compared as the files they name, so "run",
// "run/" and "./run" are one.
void check_distinct(const std::string& what, const std::vector<std::string>& items, bool as_paths);

// An output directory option naming an existing file would fail only when the results are written, after the work.
void check_out_dir(const std::string& option, const std::string& dir);

// CLI11 reads an integer in any base ("0256" is octal 174, "0x10" is 16) and wraps "-1" into an unsigned option: an
// option that counts or seeds takes decimal digits without a leading zero (->check(decimal_digits())).
CLI::Validator decimal_digits();

// No value twice in a list option ("--lengths 512,512" would be evaluated, and averaged, twice).
template <class T>
void check_no_repeats(const std::string& option, const std::vector<T>& values) {
  for (size_t i = 0; i < values.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (values[i] == values[j])
        throw UsageError(option + ": " + CLI::detail::to_string(values[i]) + " is given twice");
}

// Whether the user gave the option at all (its default cannot tell).
inline bool given(const CLI::App& app, const std::string& option) { return app.count(option) > 0; }

}  // namespace ssmax
