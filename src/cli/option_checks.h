#pragma once
// What the command-line layer alone knows about options: the shared runtime options, how integers are read, and
// whether an option was given at all. Ranges and shapes of the arguments are checked once, by each command's
// check_arguments (util/arg_checks.h), which `study` reaches too.
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "eval/eval_commands.h"
#include "util/arg_checks.h"
#include "util/errors.h"

namespace ssmax {

// --device and --threads of the commands that load a model for evaluation.
void add_runtime_options(CLI::App& app, EvalRuntimeArgs& runtime);

// --normalizer and its parameters (--s, --b, --logn-length, --attn-scale, --floor-scale, --scaled-layers) of the
// commands that load a model for evaluation: the normalizer evaluated in place of the trained one (NormalizerSwap).
// The name is parsed when the command runs (the returned function), so a bad one exits 2 with the allowed names.
std::function<void()> add_normalizer_swap_options(CLI::App& app, NormalizerSwap& swap);

// CLI11 reads an integer in any base ("0256" is octal 174, "0x10" is 16) and wraps "-1" into an unsigned option: an
// option that counts or seeds takes decimal digits without a leading zero (->check(decimal_digits())).
CLI::Validator decimal_digits();

// Whether the user gave the option at all (its default cannot tell).
inline bool given(const CLI::App& app, const std::string& option) { return app.count(option) > 0; }

}  // namespace ssmax
