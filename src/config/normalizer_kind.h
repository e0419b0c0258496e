#pragma once
// Which attention normalizer a model uses, and the rules about it that hold outside the model: names, parsing,
// the default s, and which switches a trained model allows. Torch-free, so the config can hold the enum.
// The formula itself lives in src/model/normalizer.h.
#include <array>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "util/errors.h"

namespace ssmax {

enum class Normalizer { Softmax, SSMax, SSMaxBias };

// The paper's initial s: softmax((s·ln n)·z) with s = 0.43 (arXiv 2501.19399, section 2).
constexpr double kDefaultSInit = 0.43;

// In JSON (config.json, reports) a normalizer is its name, never the enum's integer.
NLOHMANN_JSON_SERIALIZE_ENUM(Normalizer, {{Normalizer::Softmax, "softmax"},
                                          {Normalizer::SSMax, "ssmax"},
                                          {Normalizer::SSMaxBias, "ssmax_bias"}})

// In config files and on the command line.
inline const std::array<const char*, 3>& normalizer_names() {
  static const std::array<const char*, 3> names = {"softmax", "ssmax", "ssmax_bias"};
  return names;
}
inline std::string normalizer_name(Normalizer kind) { return normalizer_names()[static_cast<size_t>(kind)]; }
inline std::optional<Normalizer> normalizer_from_name(const std::string& name) {
  for (size_t i = 0; i < normalizer_names().size(); ++i)
    if (name == normalizer_names()[i]) return static_cast<Normalizer>(i);
  return std::nullopt;
}
// `name` as given for `what` (an option or key): UsageError naming the allowed names otherwise.
inline Normalizer parse_normalizer(const std::string& name, const std::string& what) {
  if (auto kind = normalizer_from_name(name)) return *kind;
  throw UsageError(what + " " + name + " is not allowed: expected softmax, ssmax or ssmax_bias");
}
inline bool has_learned_scale(Normalizer kind) { return kind != Normalizer::Softmax; }  // s
inline bool has_bias(Normalizer kind) { return kind == Normalizer::SSMaxBias; }         // b

// A trained model may switch only to a normalizer that adds parameters (which start at their initial values) and
// keeps every trained one: softmax → ssmax, softmax → ssmax_bias, ssmax → ssmax_bias. Taking s or b away would
// discard what was learned. Used by `train --resume` (variant (f)) and the evaluation swap (variant (e)).
inline bool normalizer_switch_allowed(Normalizer from, Normalizer to) {
  return static_cast<int>(to) > static_cast<int>(from);
}
inline const char* allowed_normalizer_switches() { return "softmax → ssmax/ssmax_bias, ssmax → ssmax_bias"; }

}  // namespace ssmax
