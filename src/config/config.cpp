// Config schema table, strict validation, --set overrides and the resolved JSON form.
#include "config/config.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <sstream>
#include <variant>

#include "util/errors.h"

namespace ssmax {
namespace {

using json = nlohmann::json;
using Field = std::variant<int*, uint64_t*, double*, bool*, std::string*, std::vector<std::string>*>;

struct KeySpec {
  std::string path;
  std::function<Field(Config&)> field;
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool min_exclusive = false;
  std::vector<std::string> choices;  // allowed strings; empty = any
};

#define FIELD(member) [](Config& c) -> Field { return &c.member; }
constexpr double kInf = std::numeric_limits<double>::infinity();

// The schema: every key, in the order the resolved config is written.
const std::vector<KeySpec>& schema() {
  static const std::vector<KeySpec> keys = {
      {"name", FIELD(name)},
      {"seed", FIELD(seed), 0, 1.8e19},
      {"out_dir", FIELD(out_dir)},
      {"device", FIELD(device)},
      {"threads", FIELD(threads), 0, 1024},
      {"data.sources", FIELD(data.sources)},
      {"data.dataset_dir", FIELD(data.dataset_dir)},
      {"data.tokenizer.vocab_size", FIELD(data.tokenizer.vocab_size), 260, 1 << 20},
      {"data.tokenizer.model_type", FIELD(data.tokenizer.model_type), -kInf, kInf, false, {"bpe", "unigram"}},
      {"data.tokenizer.model", FIELD(data.tokenizer.model)},
      {"data.tokenizer.sample_mb", FIELD(data.tokenizer.sample_mb), 1, 1 << 20},
      {"data.val_fraction", FIELD(data.val_fraction), 0, 0.5, true},
      {"data.text_field", FIELD(data.text_field)},
      {"data.shard_tokens", FIELD(data.shard_tokens), 1024, 1e12},
      {"model.n_layer", FIELD(model.n_layer), 1, 1000},
      {"model.n_head", FIELD(model.n_head), 1, 1024},
      {"model.n_embd", FIELD(model.n_embd), 1, 1 << 16},
      {"model.block_size", FIELD(model.block_size), 2, 1 << 20},
      {"model.dropout", FIELD(model.dropout), 0, 0.999999},
      {"model.bias", FIELD(model.bias)},
      {"model.tie_embeddings", FIELD(model.tie_embeddings)},
      {"model.position", FIELD(model.position), -kInf, kInf, false, {"learned", "rope"}},
      {"model.rope_theta", FIELD(model.rope_theta), 0, kInf, true},
      {"model.norm", FIELD(model.norm), -kInf, kInf, false, {"layernorm", "rmsnorm"}},
      {"model.mlp", FIELD(model.mlp), -kInf, kInf, false, {"gelu", "swiglu"}},
      {"model.mlp_hidden", FIELD(model.mlp_hidden), 0, 1 << 20},
      {"model.attention.normalizer", FIELD(model.attention.normalizer), -kInf, kInf, false,
       {"softmax", "ssmax", "ssmax_bias"}},
      {"model.attention.s_init", FIELD(model.attention.s_init), -100, 100},
      {"model.attention.learn_s", FIELD(model.attention.learn_s)},
      {"model.attention.b_init", FIELD(model.attention.b_init), -100, 100},
      {"optim.lr", FIELD(optim.lr), 0, 10, true},
      {"optim.min_lr", FIELD(optim.min_lr), 0, 10},
      {"optim.schedule", FIELD(optim.schedule), -kInf, kInf, false, {"cosine", "constant", "linear"}},
      {"optim.warmup_steps", FIELD(optim.warmup_steps), 0, 1e9},
      {"optim.weight_decay", FIELD(optim.weight_decay), 0, 10},
      {"optim.beta1", FIELD(optim.beta1), 0, 1, false},
      {"optim.beta2", FIELD(optim.beta2), 0, 1, false},
      {"optim.eps", FIELD(optim.eps), 0, 1, true},
      {"optim.grad_clip", FIELD(optim.grad_clip), 0, kInf},
      {"train.batch_size", FIELD(train.batch_size), 1, 1 << 20},
      {"train.grad_accum_steps", FIELD(train.grad_accum_steps), 1, 1 << 20},
      {"train.max_steps", FIELD(train.max_steps), 1, 1e9},
      {"train.log_every", FIELD(train.log_every), 1, 1e9},
      {"train.eval_every", FIELD(train.eval_every), 1, 1e9},
      {"train.eval_batches", FIELD(train.eval_batches), 1, 1e6},
      {"train.checkpoint_every", FIELD(train.checkpoint_every), 1, 1e9},
      {"train.keep_last", FIELD(train.keep_last), 1, 1000},
      {"train.precision", FIELD(train.precision), -kInf, kInf, false, {"fp32", "bf16"}},
      {"train.tf32", FIELD(train.tf32)},
      {"distributed.timeout_s", FIELD(distributed.timeout_s), 1, 86400},
      {"distributed.bucket_mb", FIELD(distributed.bucket_mb), 0, 1 << 16, true},
      {"distributed.overlap", FIELD(distributed.overlap)},
  };
  return keys;
}
#undef FIELD

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, sep);) parts.push_back(part);
  return parts;
}

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
  std::string leaf = split(unknown, '.').back();
  for (const auto& c : candidates)
    if (split(c, '.').back() == leaf) return c;
  std::string best;
  size_t best_distance = std::numeric_limits<size_t>::max();
  for (const auto& c : candidates) {
    size_t d = edit_distance(unknown, c);
    if (d < best_distance) best_distance = d, best = c;
  }
  return best;
}

const KeySpec* find_key(const std::string& path) {
  for (const auto& key : schema())
    if (key.path == path) return &key;
  return nullptr;
}

bool is_section(const std::string& path) {
  for (const auto& key : schema())
    if (key.path.rfind(path + ".", 0) == 0) return true;
  return false;
}

[[noreturn]] void fail(const std::string& origin, const std::string& message) {
  throw UsageError(origin + ": " + message);
}

std::string describe(const KeySpec& key) {
  if (!key.choices.empty()) {
    std::string list;
    for (const auto& c : key.choices) list += (list.empty() ? "" : "|") + c;
    return "one of " + list;
  }
  std::ostringstream out;
  out.precision(15);  // integer bounds such as 1048576 in full, not 1.04858e+06
  bool has_min = std::isfinite(key.min), has_max = std::isfinite(key.max);
  if (has_min && has_max)
    out << (key.min_exclusive ? "(" : "[") << key.min << ", " << key.max << "]";
  else if (has_min)
    out << (key.min_exclusive ? "> " : ">= ") << key.min;
  return out.str();
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

const json* lookup(const json& root, const std::string& path) {
  const json* node = &root;
  for (const auto& part : split(path, '.')) {
    if (!node->is_object() || !node->contains(part)) return nullptr;
    node = &(*node)[part];
  }
  return node;
}

std::string type_name(const Field& field) {
  return std::visit(
      [](auto* p) -> std::string {
        using T = std::remove_pointer_t<decltype(p)>;
        if constexpr (std::is_same_v<T, int> || std::is_same_v<T, uint64_t>) return "an integer";
        else if constexpr (std::is_same_v<T, double>) return "a number";
        else if constexpr (std::is_same_v<T, bool>) return "true or false";
        else if constexpr (std::is_same_v<T, std::string>) return "a string";
        else return "a list of strings";
      },
      field);
}

// Stores one JSON value into its typed field, checking type and range.
void assign(const KeySpec& key, Field field, const json& value, const std::string& origin) {
  auto wrong_type = [&] {
    fail(origin, "'" + key.path + "' = " + value.dump() + " has the wrong type: expected " + type_name(field));
  };
  auto check_range = [&](double v) {
    bool low = key.min_exclusive ? v <= key.min : v < key.min;
    if (low || v > key.max || std::isnan(v))
      fail(origin, "'" + key.path + "' = " + value.dump() + " is out of range: allowed " + describe(key));
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
        } else if constexpr (std::is_same_v<T, std::string>) {
          if (!value.is_string()) wrong_type();
          auto s = value.get<std::string>();
          if (!key.choices.empty() && std::find(key.choices.begin(), key.choices.end(), s) == key.choices.end())
            fail(origin, "'" + key.path + "' = \"" + s + "\" is not allowed: expected " + describe(key));
          *target = s;
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

// Rules that involve more than one key.
void check_relations(const Config& c, const std::string& origin) {
  const auto& m = c.model;
  if (m.n_embd % m.n_head != 0)
    fail(origin, "model.n_embd = " + std::to_string(m.n_embd) + " is not divisible by model.n_head = " +
                     std::to_string(m.n_head) + " (each head gets n_embd / n_head dimensions)");
  if (m.position == "rope" && (m.n_embd / m.n_head) % 2 != 0)
    fail(origin, "model.position = \"rope\" needs an even head size, but n_embd / n_head = " +
                     std::to_string(m.n_embd / m.n_head));
  if (c.optim.min_lr > c.optim.lr)
    fail(origin, "optim.min_lr = " + std::to_string(c.optim.min_lr) + " is above optim.lr = " +
                     std::to_string(c.optim.lr) + " (min_lr must be <= lr)");
  if (c.data.sources.empty()) fail(origin, "data.sources is empty: give at least one text file or directory");
  if (c.out_dir.empty()) fail(origin, "out_dir is empty: give the directory where the run is written");
  const std::string& d = c.device;
  bool device_ok = d == "auto" || d == "cpu" || d == "cuda";
  if (d.rfind("cuda:", 0) == 0 && d.size() > 5)
    device_ok = std::all_of(d.begin() + 5, d.end(), [](char ch) { return std::isdigit(ch); });
  if (!device_ok) fail(origin, "'device' = \"" + d + "\" is not allowed: expected auto, cpu, cuda or cuda:N");
}

std::pair<size_t, size_t> line_column(const std::string& text, size_t byte) {
  size_t line = 1, column = 1;
  for (size_t i = 0; i < byte && i < text.size(); ++i) {
    if (text[i] == '\n') ++line, column = 1;
    else ++column;
  }
  return {line, column};
}

}  // namespace

int ModelConfig::resolved_mlp_hidden() const {
  if (mlp_hidden > 0) return mlp_hidden;
  return mlp == "swiglu" ? (8 * n_embd) / 3 : 4 * n_embd;
}

Config config_from_json(const json& root, const std::string& origin) {
  if (!root.is_object()) fail(origin, "the config must be a JSON object { ... }");
  check_known_keys(root, "", origin);
  Config config;
  for (const auto& key : schema())
    if (const json* value = lookup(root, key.path)) assign(key, key.field(config), *value, origin);
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
        if constexpr (std::is_same_v<T, std::string>) {
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
  json* node = &root;
  auto parts = split(path, '.');
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    json& child = (*node)[parts[i]];
    if (!child.is_object()) child = json::object();
    node = &child;
  }
  node = &(*node)[parts.back()];
  *node = value;
  assign(*key, key->field(scratch), value, origin);  // type and range, with the --set text as origin
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path);
  if (!in) throw UsageError(path + ": cannot open config file (check the path)");
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  json root;
  try {
    root = json::parse(text, nullptr, true, /*ignore_comments=*/true);
  } catch (const json::parse_error& e) {
    auto [line, column] = line_column(text, e.byte > 0 ? e.byte - 1 : 0);
    std::string what = e.what();
    auto cut = what.find(": ", what.find("parse error"));
    std::string reason = cut == std::string::npos ? what : what.substr(cut + 2);
    throw UsageError(path + ":" + std::to_string(line) + ":" + std::to_string(column) + ": invalid JSON: " + reason);
  }
  if (!root.is_object()) fail(path, "the config must be a JSON object { ... }");
  for (const auto& assignment : overrides) apply_override(root, assignment);
  return config_from_json(root, path);
}

json config_to_json(const Config& config) {
  Config copy = config;
  json root = json::object();
  for (const auto& key : schema()) {
    json* node = &root;
    auto parts = split(key.path, '.');
    for (size_t i = 0; i + 1 < parts.size(); ++i) node = &(*node)[parts[i]];
    std::visit([&](auto* p) { (*node)[parts.back()] = *p; }, key.field(copy));
  }
  return root;
}

std::vector<std::string> config_keys() {
  std::vector<std::string> keys;
  for (const auto& key : schema()) keys.push_back(key.path);
  return keys;
}

}  // namespace ssmax

namespace ssmax {
namespace {
void flatten(const nlohmann::json& j, const std::string& prefix, std::map<std::string, nlohmann::json>& out) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) flatten(*it, prefix.empty() ? it.key() : prefix + "." + it.key(), out);
  } else {
    out[prefix] = j;
  }
}
}  // namespace

std::vector<std::string> config_differences(const nlohmann::json& a, const nlohmann::json& b) {
  std::map<std::string, nlohmann::json> fa, fb;
  flatten(a, "", fa);
  flatten(b, "", fb);
  std::vector<std::string> keys;
  for (const auto& [key, value] : fa)
    if (!fb.count(key) || fb[key] != value) keys.push_back(key);
  for (const auto& [key, value] : fb)
    if (!fa.count(key)) keys.push_back(key);
  std::sort(keys.begin(), keys.end());
  return keys;
}
}  // namespace ssmax
