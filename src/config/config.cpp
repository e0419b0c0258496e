// Strict validation against the schema table (schema.cpp), --set overrides and the resolved JSON form.
#include "config/config.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <variant>

#include "config/json_paths.h"
#include "config/schema.h"
#include "util/errors.h"
#include "util/files.h"
#include "util/text.h"

namespace ssmax {
namespace {

using json = nlohmann::json;

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The valid key (or section) closest to an unknown one: same leaf name elsewhere first, then spelling.
std::string closest_key(const std::string& unknown) {
  std::vector<std::string> candidates;
  for (const auto& key : schema()) {
    auto parts = split(key.path, '.');
    std::string prefix;
    for (const auto& part : parts) {
      prefix += (prefix.empty() ? "" : ".") + part;
      candidates.push_back(prefix);
    }
  }
  const std::string leaf = leaf_key(unknown);
  for (const auto& c : candidates)
    if (leaf_key(c) == leaf) return c;
  std::string best;
  size_t best_distance = std::numeric_limits<size_t>::max();
  for (const auto& c : candidates) {
    size_t d = edit_distance(unknown, c);
    if (d < best_distance) best_distance = d, best = c;
  }
  return best;
}

[[noreturn]] void fail(const std::string& origin, const std::string& message) {
  throw UsageError(escape_controls(origin + ": " + message));  // keys and values come from the file
}

// Rejects keys the schema does not know, recursing into sections.
void check_known_keys(const json& object, const std::string& prefix, const std::string& origin) {
  for (auto it = object.begin(); it != object.end(); ++it) {
    std::string path = prefix.empty() ? it.key() : prefix + "." + it.key();
    if (find_key(path)) continue;
    if (is_section(path)) {
      if (!it->is_object()) fail(origin, "'" + path + "' must be an object (a section of keys)");
      check_known_keys(*it, path, origin);
      continue;
    }
    fail(origin, "unknown key '" + path + "' (did you mean '" + closest_key(path) + "'?)");
  }
}

// Stores one JSON value into its typed field, checking type and range.
void assign(const KeySpec& key, Field field, const json& value, const std::string& origin) {
  auto wrong_type = [&] {
    fail(origin, "'" + key.path + "' = " + value.dump() + " has the wrong type: expected " + type_name(field));
  };
  auto check_range = [&](double v) {
    bool low = key.min_exclusive ? v <= key.min : v < key.min;
    if (low || v > key.max || std::isnan(v))
      fail(origin, "'" + key.path + "' = " + value.dump() + " is out of range: allowed " + describe_allowed(key));
  };
  std::visit(
      [&](auto* target) {
        using T = std::remove_pointer_t<decltype(target)>;
        if constexpr (std::is_same_v<T, int> || std::is_same_v<T, uint64_t>) {
          if (!value.is_number_integer()) wrong_type();
          check_range(value.get<double>());
          *target = value.get<T>();
        } else if constexpr (std::is_same_v<T, double>) {
          if (!value.is_number()) wrong_type();
          check_range(value.get<double>());
          *target = value.get<double>();
        } else if constexpr (std::is_same_v<T, bool>) {
          if (!value.is_boolean()) wrong_type();
          *target = value.get<bool>();
        } else if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, Normalizer>) {
          if (!value.is_string()) wrong_type();
          const auto s = value.get<std::string>();
          const bool allowed = key.matches ? key.matches(s)
                                           : key.choices.empty() || std::find(key.choices.begin(), key.choices.end(),
                                                                              s) != key.choices.end();
          if (!allowed)
            fail(origin, "'" + key.path + "' = \"" + s + "\" is not allowed: expected " + describe_allowed(key));
          if constexpr (std::is_same_v<T, Normalizer>) *target = *normalizer_from_name(s);
          else *target = s;
        } else {
          if (!value.is_array()) wrong_type();
          target->clear();
          for (const auto& item : value) {
            if (!item.is_string()) wrong_type();
            target->push_back(item.get<std::string>());
          }
        }
      },
      field);
}

// The recall task's sizes against each other and the block (data/recall_task.h lays a sequence out).
void check_recall_task(const Config& c, const std::string& origin) {
  const auto& t = c.data.mqar;
  const int width = t.mode == "pair" ? 1 : 2, block = c.model.block_size;
  const int pairs = t.pairs > 0 ? t.pairs : (block - t.queries) / width;
  const std::string mode = " (data.mqar.mode = \"" + t.mode + "\": " + (width == 1 ? "" : "2 tokens a pair, ") +
                           "plus data.mqar.queries = " + std::to_string(t.queries) + ")";
  if (width * pairs + t.queries > block)
    fail(origin, "data.mqar.pairs = " + std::to_string(pairs) + " do not fit in model.block_size = " +
                     std::to_string(block) + mode + "; give fewer pairs or queries, or a longer block");
  if (pairs < t.queries)
    fail(origin, "data.mqar: " + std::to_string(pairs) +
                     " pairs cannot answer data.mqar.queries = " + std::to_string(t.queries) + " distinct queries" +
                     (t.pairs > 0 ? "" : mode) + "; ask fewer queries or give a longer block");
  if (pairs > t.keys)
    fail(origin, "data.mqar.keys = " + std::to_string(t.keys) + " is fewer than the " + std::to_string(pairs) +
                     " pairs of a sequence (each key appears once); give more keys");
  if (t.min_pairs > pairs)
    fail(origin, "data.mqar.min_pairs = " + std::to_string(t.min_pairs) + " is above the pairs of a sequence (" +
                     std::to_string(pairs) + ")");
  if (t.min_pairs > 0 && t.min_pairs < t.queries)
    fail(origin, "data.mqar.min_pairs = " + std::to_string(t.min_pairs) + " cannot answer data.mqar.queries = " +
                     std::to_string(t.queries) + " distinct queries; give min_pairs >= queries");
  if (c.model.attention.document_mask)
    fail(origin, "model.attention.document_mask = true needs documents, but data.task = \"mqar\" makes one "
                 "sequence a row; set it to false");
  if (!c.init_from.empty())
    fail(origin, "init_from = \"" + c.init_from +
                     "\" brings a tokenizer for text, but data.task = \"mqar\" has "
                     "its own tokens; leave init_from empty");
}

// Rules that involve more than one key.
void check_relations(const Config& c, const std::string& origin) {
  const auto& m = c.model;
  if (m.n_embd % m.n_head != 0)
    fail(origin, "model.n_embd = " + std::to_string(m.n_embd) + " is not divisible by model.n_head = " +
                     std::to_string(m.n_head) + " (each head gets n_embd / n_head dimensions)");
  if (m.n_kv_head > 0 && m.n_head % m.n_kv_head != 0)
    fail(origin, "model.n_kv_head = " + std::to_string(m.n_kv_head) + " does not divide model.n_head = " +
                     std::to_string(m.n_head) + " (each key/value head serves n_head / n_kv_head query heads)");
  if (m.nope_every > 0 && m.position != "rope")
    fail(origin, "model.nope_every = " + std::to_string(m.nope_every) + " needs model.position = \"rope\" (it says " +
                     "which RoPE layers go without), but model.position = \"" + m.position + "\"");
  if (m.nope_every > m.n_layer)
    fail(origin, "model.nope_every = " + std::to_string(m.nope_every) + " with " + std::to_string(m.n_layer) +
                     " layers leaves every layer with RoPE; give 1 … model.n_layer, or 0 for none");
  const auto& a = m.attention;
  if (a.scaled_layers == "nope") {
    if (!is_parameter_free_scaling(a.normalizer))
      fail(origin, "model.attention.scaled_layers = \"nope\" applies to logn and llama4, but the normalizer is " +
                       normalizer_name(a.normalizer) + " (which acts on every layer)");
    if (!m.has_nope_layers())
      fail(origin, "model.attention.scaled_layers = \"nope\" but every layer sees positions (model.position = \"" +
                       m.position + "\"; set model.position = \"none\", or model.nope_every with rope)");
  }
  if (m.position == "rope" && (m.n_embd / m.n_head) % 2 != 0)
    fail(origin, "model.position = \"rope\" needs an even head size, but n_embd / n_head = " +
                     std::to_string(m.n_embd / m.n_head));
  if (c.optim.min_lr > c.optim.lr)
    fail(origin, "optim.min_lr = " + std::to_string(c.optim.min_lr) +
                     " is above optim.lr = " + std::to_string(c.optim.lr) + " (min_lr must be <= lr)");
  if (c.data.task == "mqar") check_recall_task(c, origin);
  else if (c.data.sources.empty()) fail(origin, "data.sources is empty: give at least one text file or directory");
  if (c.out_dir.empty()) fail(origin, "out_dir is empty: give the directory where the run is written");
}

}  // namespace

double ModelConfig::resolved_s_init() const {
  if (attention.s_init_mode == "length") return 1.0 / std::log(static_cast<double>(block_size));
  return attention.s_init;
}

bool ModelConfig::has_nope_layers() const {
  for (int layer = 0; layer < n_layer; ++layer)
    if (layer_is_nope(layer)) return true;
  return false;
}

bool ModelConfig::layer_is_scaled(int layer) const {
  return !(is_parameter_free_scaling(attention.normalizer) && attention.scaled_layers == "nope" &&
           !layer_is_nope(layer));
}

int ModelConfig::resolved_mlp_hidden() const {
  if (mlp_hidden > 0) return mlp_hidden;
  return mlp == "swiglu" ? (8 * n_embd) / 3 : 4 * n_embd;
}

Config config_from_json(const json& root, const std::string& origin) {
  if (!root.is_object()) fail(origin, "the config must be a JSON object { ... }");
  check_known_keys(root, "", origin);
  Config config;
  for (const auto& key : schema())
    if (const json* value = json_at(root, key.path)) assign(key, key.field(config), *value, origin);
  check_relations(config, origin);
  return config;
}

void apply_override(json& root, const std::string& assignment) {
  const std::string origin = "--set " + assignment;
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) fail(origin, "expected KEY=VALUE, e.g. --set optim.lr=3e-4");
  std::string path = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  const KeySpec* key = find_key(path);
  if (!key && is_section(path))
    fail(origin, "'" + path + "' is a section, not a key: set one of its keys (e.g. --set " + path + ".<key>=VALUE)");
  if (!key) fail(origin, "unknown key '" + path + "' (did you mean '" + closest_key(path) + "'?)");
  Config scratch;
  json value;
  std::visit(
      [&](auto* p) {
        using T = std::remove_pointer_t<decltype(p)>;
        if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, Normalizer>) {
          value = text;
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          if (!text.empty() && text[0] == '[') value = json::parse(text, nullptr, false);
          else value = split(text, ',');
        } else {
          value = json::parse(text, nullptr, false);
          if (value.is_discarded() || value.is_string() || value.is_structured())
            fail(origin, "'" + text + "' is not " + type_name(p));
        }
      },
      key->field(scratch));
  json_make_at(root, path) = value;
  assign(*key, key->field(scratch), value, origin);  // type and range, with the --set text as origin
}

json load_config_json(const std::string& path, const std::vector<std::string>& overrides) {
  const std::string text = read_input_file(path, "config", "presets are in configs/");
  json root = parse_json_strict(text, path);
  if (!root.is_object()) fail(path, "the config must be a JSON object { ... }");
  for (const auto& assignment : overrides) apply_override(root, assignment);
  return root;
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  return config_from_json(load_config_json(path, overrides), path);
}

json config_to_json(const Config& config) {
  Config copy = config;
  json root = json::object();
  for (const auto& key : schema()) {
    std::visit([&](auto* p) { json_make_at(root, key.path) = *p; }, key.field(copy));
  }
  return root;
}

std::vector<std::string> config_keys() {
  std::vector<std::string> keys;
  for (const auto& key : schema()) keys.push_back(key.path);
  return keys;
}

void upgrade_stored_config(json& stored) {
  if (!stored.is_object() || !stored.contains("model") || !stored["model"].is_object()) return;
  auto& model = stored["model"];
  // What older versions did, where today's default would say otherwise: no vocabulary padding.
  if (!model.contains("vocab_multiple")) model["vocab_multiple"] = 1;
  // Keys added later whose defaults are what older runs did: one key/value head per query head, s from s_init.
  if (!model.contains("n_kv_head")) model["n_kv_head"] = 0;
  if (model.contains("attention") && model["attention"].is_object() && !model["attention"].contains("s_init_mode"))
    model["attention"]["s_init_mode"] = "value";
  if (model.contains("attention") && model["attention"].is_object() && !model["attention"].contains("document_mask"))
    model["attention"]["document_mask"] = false;
  if (stored.contains("data") && stored["data"].is_object() && !stored["data"].contains("text_documents"))
    stored["data"]["text_documents"] = "file";
}

std::vector<std::string> config_differences(const json& a, const json& b) {
  auto fa = flatten_json(a), fb = flatten_json(b);
  std::vector<std::string> keys;
  for (const auto& [key, value] : fa)
    if (!fb.count(key) || fb[key] != value) keys.push_back(key);
  for (const auto& [key, value] : fb)
    if (!fa.count(key)) keys.push_back(key);
  std::sort(keys.begin(), keys.end());
  return keys;
}

void check_data_config(const DataConfig& data) {
  Config config;
  config.data = data;
  const json all = config_to_json(config);
  config_from_json(json{{"data", all["data"]}}, "data");
}

std::vector<ConfigKeyInfo> config_reference() {
  Config defaults;
  const json resolved = config_to_json(defaults);
  std::vector<ConfigKeyInfo> keys;
  for (const auto& key : schema())
    keys.push_back({key.path, type_name(key.field(defaults)), json_at(resolved, key.path)->dump(),
                    key.choices.empty() ? describe_allowed(key) : "", key.choices, key.doc, key.on_resume});
  return keys;
}

std::vector<std::string> config_keys_changeable_on_resume(OnResume which) {
  std::vector<std::string> keys;
  for (const auto& key : schema())
    if (key.on_resume == which) keys.push_back(key.path);
  return keys;
}

std::string config_reference_markdown() {
  std::string table = "| key | type | default | allowed | on resume | meaning |\n|---|---|---|---|---|---|\n";
  for (const auto& k : config_reference()) {
    const std::string allowed = k.choices.empty() ? k.range : "`" + join(k.choices, "`, `") + "`";
    const char* resume = k.on_resume == OnResume::Changeable             ? "may change"
                         : k.on_resume == OnResume::WithNormalizerSwitch ? "with a normalizer switch"
                                                                         : "";
    table += "| `" + k.key + "` | " + k.type + " | `" + k.default_value + "` | " + allowed + " | " + resume + " | " +
             k.doc + " |\n";
  }
  return table;
}

}  // namespace ssmax
