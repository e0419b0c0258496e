#pragma once
// The config schema table (internal to src/config/): one row per key with its typed field in Config (which holds
// the default), its range or choices, and a one-line description. config.cpp validates against it; the
// config table of docs/configuration.md is generated from it (config_reference_markdown(), checked by a test).
#include <functional>
#include <limits>
#include <string>
#include <variant>
#include <vector>

#include "config/config.h"

namespace ssmax {

using Field = std::variant<int*, uint64_t*, double*, bool*, std::string*, std::vector<std::string>*, Normalizer*>;

struct KeySpec {
  std::string path;
  std::function<Field(Config&)> field;
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool min_exclusive = false;
  std::vector<std::string> choices;  // allowed strings; empty = any
  // Accepts a string value instead of exact membership in `choices` (which then only documents the forms).
  std::function<bool(const std::string&)> matches;
  std::string doc;
  OnResume on_resume = OnResume::Fixed;  // whether `train --resume` may change it (config.h)
};

// Every key, in the order the resolved config is written.
const std::vector<KeySpec>& schema();
const KeySpec* find_key(const std::string& path);
bool is_section(const std::string& path);

// "an integer", "a number", …: what a value of the field must be.
std::string type_name(const Field& field);
// The allowed values as a user reads them: "[1, 1000]", "> 0", "one of bpe|unigram"; empty when anything goes.
std::string describe_allowed(const KeySpec& key);

// auto, cpu, cuda or cuda:N: what `device` and every --device accept.
bool is_device_name(const std::string& name);

}  // namespace ssmax
