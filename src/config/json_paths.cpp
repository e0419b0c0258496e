#include "config/json_paths.h"

#include "util/text.h"

namespace ssmax {
using json = nlohmann::json;

const json* json_at(const json& root, const std::string& dotted) {
  const json* node = &root;
  for (const auto& part : split(dotted, '.')) {
    if (!node->is_object() || !node->contains(part)) return nullptr;
    node = &(*node)[part];
  }
  return node;
}

json& json_make_at(json& root, const std::string& dotted) {
  json* node = &root;
  for (const auto& part : split(dotted, '.')) {
    if (!node->is_object()) *node = json::object();
    node = &(*node)[part];
  }
  return *node;
}

namespace {
void flatten_into(const json& j, const std::string& prefix, std::map<std::string, json>& out) {
  if (!j.is_object()) {
    out[prefix] = j;
    return;
  }
  for (auto it = j.begin(); it != j.end(); ++it)
    flatten_into(*it, prefix.empty() ? it.key() : prefix + "." + it.key(), out);
}
}  // namespace

std::map<std::string, json> flatten_json(const json& root) {
  std::map<std::string, json> out;
  flatten_into(root, "", out);
  return out;
}

std::string leaf_key(const std::string& dotted) { return dotted.substr(dotted.rfind('.') + 1); }

}  // namespace ssmax
