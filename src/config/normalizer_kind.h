#pragma once
// Which attention normalizer a model uses, and the rules about it that hold outside the model: names, parsing,
// the default s, and which switches a trained model allows. Torch-free, so the config can hold the enum.
// The formula itself lives in src/model/normalizer.h.
#include <array>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/errors.h"

namespace ssmax {

enum class Normalizer { Softmax, SSMax, SSMaxBias, Logn, Llama4 };

// The paper's initial s: softmax((s·ln n)·z) with s = 0.43 (arXiv 2501.19399, section 2).
constexpr double kDefaultSInit = 0.43;

// Every normalizer, spelled once: its name (configs, command lines, JSON, reports), the learnable per-head scalars
// of softmax((s·ln n + b)·z) it has, under the names its parameters and metrics carry, and its factor c(n) on the
// logits of a query that sees n keys (src/model/normalizer.h computes it). logn and llama4 are the length-aware
// scalings production models derived from the paper, parameter-free.
struct NormalizerSpec {
  Normalizer kind;
  const char* name;
  bool has_s, has_b;
  const char* factor;
};
inline constexpr std::array<NormalizerSpec, 5> kNormalizers = {{
    {Normalizer::Softmax, "softmax", false, false, "1"},
    {Normalizer::SSMax, "ssmax", true, false, "s·ln n"},
    {Normalizer::SSMaxBias, "ssmax_bias", true, true, "s·ln n + b"},
    {Normalizer::Logn, "logn", false, false, "max(1, ln n / ln L)"},
    {Normalizer::Llama4, "llama4", false, false, "1 + a·ln(1 + ⌊n / F⌋)"},
}};

inline const NormalizerSpec& normalizer_spec(Normalizer kind) {
  for (const auto& spec : kNormalizers)
    if (spec.kind == kind) return spec;
  throw UsageError("unknown normalizer kind " + std::to_string(static_cast<int>(kind)));
}
inline std::string normalizer_name(Normalizer kind) { return normalizer_spec(kind).name; }
inline std::vector<std::string> normalizer_names() {
  std::vector<std::string> names;
  for (const auto& spec : kNormalizers) names.push_back(spec.name);
  return names;
}
inline std::optional<Normalizer> normalizer_from_name(const std::string& name) {
  for (const auto& spec : kNormalizers)
    if (name == spec.name) return spec.kind;
  return std::nullopt;
}
// `name` as given for `what` (an option or key): UsageError naming the allowed names otherwise.
inline Normalizer parse_normalizer(const std::string& name, const std::string& what) {
  if (auto kind = normalizer_from_name(name)) return *kind;
  std::string allowed;
  for (const auto& spec : kNormalizers) allowed += std::string(allowed.empty() ? "" : ", ") + spec.name;
  throw UsageError(what + " " + name + " is not allowed: expected one of " + allowed);
}
inline bool has_learned_scale(Normalizer kind) { return normalizer_spec(kind).has_s; }  // s
inline bool has_bias(Normalizer kind) { return normalizer_spec(kind).has_b; }           // b
// A fixed function of n with no parameters (logn, llama4): it may act on some layers only (scaled_layers).
inline bool is_parameter_free_scaling(Normalizer kind) {
  return kind == Normalizer::Logn || kind == Normalizer::Llama4;
}

// The learnable scalars any normalizer may have, in the order reports show them: the names of the model's
// parameters (src/model/normalizer.h), of the metrics records' fields, TensorBoard tags and figures. Whoever shows
// learned parameters iterates over these instead of spelling s and b.
inline constexpr std::array<const char*, 2> kNormalizerParameters = {"s", "b"};
// In JSON (config.json, reports) a normalizer is its name, never the enum's integer; an unknown name is an error,
// not the first entry.
inline void to_json(nlohmann::json& j, Normalizer kind) { j = normalizer_name(kind); }
inline void from_json(const nlohmann::json& j, Normalizer& kind) {
  kind = parse_normalizer(j.is_string() ? j.get<std::string>() : j.dump(), "normalizer");
}

// The switches a trained model may make, listed: only to a normalizer that keeps every trained parameter (new ones
// start at their initial values). Taking s or b away would discard what was learned. Used by `train --resume`
// (variant (f)) and the evaluation swap (variant (e), and a softmax model scaled at inference only as Qwen's logn
// and Llama 4's temperature are).
inline constexpr std::array<std::pair<Normalizer, Normalizer>, 5> kNormalizerSwitches = {
    {{Normalizer::Softmax, Normalizer::SSMax},
     {Normalizer::Softmax, Normalizer::SSMaxBias},
     {Normalizer::SSMax, Normalizer::SSMaxBias},
     {Normalizer::Softmax, Normalizer::Logn},
     {Normalizer::Softmax, Normalizer::Llama4}}};
inline bool normalizer_switch_allowed(Normalizer from, Normalizer to) {
  for (const auto& [a, b] : kNormalizerSwitches)
    if (a == from && b == to) return true;
  return false;
}
inline std::string allowed_normalizer_switches() {
  std::string text;
  for (const auto& [a, b] : kNormalizerSwitches)
    text += (text.empty() ? "" : ", ") + normalizer_name(a) + " → " + normalizer_name(b);
  return text;
}

}  // namespace ssmax
