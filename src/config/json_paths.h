#pragma once
// Dotted keys ("model.attention.s_init") into nested JSON objects: the one walker the config, `compare` and `sweep`
// share.
#include <map>
#include <string>

#include <nlohmann/json.hpp>

namespace ssmax {

// The value at `dotted`, or nullptr when a part of the path is missing.
const nlohmann::json* json_at(const nlohmann::json& root, const std::string& dotted);

// The value at `dotted`, creating the objects on the way (replacing non-objects there).
nlohmann::json& json_make_at(nlohmann::json& root, const std::string& dotted);

// Every leaf value by its dotted key (arrays are leaves).
std::map<std::string, nlohmann::json> flatten_json(const nlohmann::json& root);

// "model.attention.s_init" → "s_init".
std::string leaf_key(const std::string& dotted);

// Parses a JSON document a user wrote (comments allowed). Throws UsageError naming `origin`, line and column for
// invalid JSON, and the dotted path of a key that appears twice in one object (nlohmann would keep the last).
nlohmann::json parse_json_strict(const std::string& text, const std::string& origin);

}  // namespace ssmax
