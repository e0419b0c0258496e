#include "config/json_paths.h"

#include <set>

#include "util/errors.h"
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

namespace {

std::pair<size_t, size_t> line_column(const std::string& text, size_t byte) {
  size_t line = 1, column = 1;
  for (size_t i = 0; i < byte && i < text.size(); ++i) {
    if (text[i] == '\n') ++line, column = 1;
    else ++column;
  }
  return {line, column};
}

// JSON allows a key twice in one object and nlohmann keeps the last: in a config that silently drops a setting the
// user wrote. This parser callback refuses the second one, naming its dotted path (arrays as [i]).
class DuplicateKeyCheck {
 public:
  bool operator()(int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (!frames_.empty() && frames_.back().is_array)
          frames_.back().key = "[" + std::to_string(frames_.back().index++) + "]";
        frames_.push_back({event == json::parse_event_t::array_start, {}, {}, 0});
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        if (!frames_.empty()) frames_.pop_back();
        break;
      case json::parse_event_t::key: {
        Frame& f = frames_.back();
        f.key = parsed.get<std::string>();
        if (!f.keys.insert(f.key).second) throw Duplicate{path()};
        break;
      }
      case json::parse_event_t::value:
        if (!frames_.empty() && frames_.back().is_array) ++frames_.back().index;
        break;
    }
    return true;
  }

  struct Duplicate {
    std::string path;
  };

 private:
  struct Frame {
    bool is_array;
    std::set<std::string> keys;
    std::string key;  // the current key (objects) or "[i]" (arrays)
    int64_t index;
  };
  std::string path() const {
    std::string p;
    for (const auto& f : frames_) {
      if (f.key.empty()) continue;
      if (!p.empty() && f.key[0] != '[') p += '.';
      p += f.key;
    }
    return p;
  }
  std::vector<Frame> frames_;
};

}  // namespace

json parse_json_strict(const std::string& text, const std::string& origin) {
  try {
    return json::parse(text, DuplicateKeyCheck(), true, /*ignore_comments=*/true);
  } catch (const DuplicateKeyCheck::Duplicate& d) {
    throw UsageError(origin + ": key '" + escape_controls(d.path) +
                     "' appears twice (JSON would keep only the last; remove one)");
  } catch (const json::parse_error& e) {
    auto [line, column] = line_column(text, e.byte > 0 ? e.byte - 1 : 0);
    std::string what = e.what();
    auto cut = what.find(": ", what.find("parse error"));
    std::string reason = cut == std::string::npos ? what : what.substr(cut + 2);
    throw UsageError(origin + ":" + std::to_string(line) + ":" + std::to_string(column) + ": invalid JSON: " + reason);
  } catch (const json::out_of_range& e) {  // a number beyond a double (1e999): found by tests/fuzz/fuzz_study.cpp
    const std::string what = e.what();
    const auto cut = what.find("] ");
    throw UsageError(origin + ": invalid JSON: " + (cut == std::string::npos ? what : what.substr(cut + 2)));
  }
}

}  // namespace ssmax
