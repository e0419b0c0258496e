#include "export/hf_import_config.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>

#include "config/json_paths.h"
#include "util/errors.h"
#include "util/files.h"

namespace ssmax {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const char* const kSupported =
    "supported: LlamaForCausalLM and ssmax-gpt's SSMaxLlamaForCausalLM (export --format hf of a Llama-shaped model)";

// The value of `key` in the HF config, or `fallback` when absent (transformers' LlamaConfig default).
json hf_value(const json& hf, const std::string& key, const json& fallback) {
  return hf.contains(key) ? hf.at(key) : fallback;
}

// A number (integer or not) the importer needs, from the HF config: a missing or non-numeric one is refused.
json hf_number(const json& hf, const std::string& file, const std::string& key) {
  if (!hf.contains(key) || !hf.at(key).is_number())
    throw UsageError(file + ": '" + key + "' is missing or not a number (a Llama config.json has it)");
  return hf.at(key);
}

const json* find_path(const json& root, const std::string& dotted) {
  const json* node = &root;
  size_t start = 0;
  while (true) {
    const size_t dot = dotted.find('.', start);
    const std::string part = dotted.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!node->is_object() || !node->contains(part)) return nullptr;
    node = &node->at(part);
    if (dot == std::string::npos) return node;
    start = dot + 1;
  }
}

void set_path(json& root, const std::string& dotted, const json& value) {
  json* node = &root;
  size_t start = 0, dot;
  while ((dot = dotted.find('.', start)) != std::string::npos) {
    node = &(*node)[dotted.substr(start, dot - start)];
    start = dot + 1;
  }
  (*node)[dotted.substr(start)] = value;
}

// Sets `key` to what the checkpoint says, unless the user set it to something else: then refuses with both.
// `same` decides agreement (default: equal JSON values; 10000 and 10000.0 agree).
void adopt(json& root, const std::string& origin, const std::string& file, const std::string& key, const json& value,
           const std::function<bool(const json&, const json&)>& same = {}) {
  if (const json* mine = find_path(root, key)) {
    const bool agree = same ? same(*mine, value) : *mine == value;
    if (!agree)
      throw UsageError(origin + ": " + key + " = " + mine->dump() + " conflicts with init_from's " + file + " (" +
                       value.dump() + "); drop the key or make it agree");
  }
  set_path(root, key, value);
}

void refuse(const std::string& file, const std::string& key, const std::string& value, const std::string& why) {
  throw UsageError(file + ": " + key + " = " + value + " " + why + "; " + kSupported);
}

}  // namespace

void apply_hf_init(json& root, const std::string& origin) {
  if (!root.is_object() || !root.contains("init_from") || !root["init_from"].is_string() ||
      root["init_from"].get<std::string>().empty())
    return;
  const std::string dir = root["init_from"].get<std::string>();
  const std::string file = (fs::path(dir) / "config.json").string();
  if (!fs::is_directory(dir))
    throw UsageError(origin + ": init_from = '" + dir + "' is not a directory (give a Hugging Face model directory)");
  const json hf = parse_json_strict(read_input_file(file, "Hugging Face config"), file);
  if (!hf.is_object()) throw UsageError(file + ": must be a JSON object");

  // The architecture: Llama only, nothing that changes the block's computation beyond what ours has.
  const json archs = hf_value(hf, "architectures", json::array());
  const std::string arch =
      archs.is_array() && archs.size() == 1 && archs[0].is_string() ? archs[0].get<std::string>() : archs.dump();
  if (arch != "LlamaForCausalLM" && arch != "SSMaxLlamaForCausalLM")
    refuse(file, "architectures", arch, "is not a Llama model");
  if (!hf_value(hf, "rope_scaling", nullptr).is_null())
    refuse(file, "rope_scaling", hf["rope_scaling"].dump(), "is not supported (ssmax-gpt's RoPE has no scaling)");
  const json act = hf_value(hf, "hidden_act", "silu");
  if (act != "silu") refuse(file, "hidden_act", act.dump(), "is not supported (SwiGLU uses silu)");
  const double eps = hf_value(hf, "rms_norm_eps", 1e-6).get<double>();
  if (std::abs(eps - 1e-5) > 1e-9)
    refuse(file, "rms_norm_eps", json(eps).dump(), "is not supported (ssmax-gpt's RMSNorm uses 1e-5)");
  const json attention_bias = hf_value(hf, "attention_bias", false), mlp_bias = hf_value(hf, "mlp_bias", false);
  if (attention_bias != mlp_bias)
    refuse(file, "attention_bias", attention_bias.dump(),
           "with mlp_bias = " + mlp_bias.dump() + " is not supported (model.bias covers both)");

  const json heads = hf_number(hf, file, "num_attention_heads"), hidden = hf_number(hf, file, "hidden_size");
  const json kv_heads = hf.contains("num_key_value_heads") && !hf["num_key_value_heads"].is_null()
                            ? hf_number(hf, file, "num_key_value_heads")
                            : heads;
  if (hf.contains("head_dim") && !hf["head_dim"].is_null() &&
      hf["head_dim"].get<int64_t>() * heads.get<int64_t>() != hidden.get<int64_t>())
    refuse(file, "head_dim", hf["head_dim"].dump(), "is not hidden_size / num_attention_heads");

  adopt(root, origin, file, "model.n_layer", hf_number(hf, file, "num_hidden_layers"));
  adopt(root, origin, file, "model.n_head", heads);
  adopt(root, origin, file, "model.n_embd", hidden);
  // 0 means n_head: both spellings of plain multi-head attention agree.
  adopt(root, origin, file, "model.n_kv_head", kv_heads,
        [&](const json& mine, const json& theirs) { return mine == theirs || (mine == 0 && theirs == heads); });
  adopt(root, origin, file, "model.mlp_hidden", hf_number(hf, file, "intermediate_size"));
  adopt(root, origin, file, "model.rope_theta", hf_value(hf, "rope_theta", 10000.0));
  adopt(root, origin, file, "model.tie_embeddings", hf_value(hf, "tie_word_embeddings", false));
  adopt(root, origin, file, "model.bias", attention_bias);
  // Layers without RoPE (ssmax-gpt's export of a NoPE or interleaved model; Llama 4's key): none at all, or every
  // k-th, as model.position / model.nope_every can say; any other pattern is refused.
  std::string position = "rope";
  if (hf.contains("no_rope_layers") && !hf["no_rope_layers"].is_null()) {
    const json& layers = hf["no_rope_layers"];
    const int64_t n = hf_number(hf, file, "num_hidden_layers").get<int64_t>();
    if (!layers.is_array() || static_cast<int64_t>(layers.size()) != n)
      refuse(file, "no_rope_layers", layers.dump(), "is not one entry per layer");
    auto rotates = [&](int64_t i) { return layers[i].is_number() && layers[i].get<double>() != 0; };
    int64_t every = 0;  // the first layer without RoPE, 1-based
    for (int64_t i = 0; i < n && every == 0; ++i)
      if (!rotates(i)) every = i + 1;
    bool none = true, periodic = true;
    for (int64_t i = 0; i < n; ++i) {
      none = none && !rotates(i);
      periodic = periodic && rotates(i) == (every == 0 || (i + 1) % every != 0);
    }
    if (none) position = "none";
    else if (!periodic)
      refuse(file, "no_rope_layers", layers.dump(),
             "is not supported (ssmax-gpt leaves RoPE out of every layer or of every k-th: model.nope_every)");
    else if (every > 0) adopt(root, origin, file, "model.nope_every", every);
  }
  adopt(root, origin, file, "model.position", position);
  adopt(root, origin, file, "model.norm", "rmsnorm");
  adopt(root, origin, file, "model.mlp", "swiglu");
  // The training length is the user's choice; the checkpoint's is the default.
  if (!find_path(root, "model.block_size"))
    set_path(root, "model.block_size", hf_number(hf, file, "max_position_embeddings"));
  // An SSMax export carries its normalizer; a plain Llama leaves it to the user (--set
  // model.attention.normalizer=ssmax converts it: the normalizer's s is then new, see model.attention.s_init_mode).
  if (arch == "SSMaxLlamaForCausalLM") {
    const json normalizer = hf_value(hf, "attention_normalizer", "ssmax");
    adopt(root, origin, file, "model.attention.normalizer", normalizer);
    adopt(root, origin, file, "model.attention.learn_s", hf_value(hf, "ssmax_learn_s", true));
    if (normalizer == "logn")
      adopt(root, origin, file, "model.attention.logn_length", hf_number(hf, file, "logn_length"));
    if (normalizer == "llama4") {
      adopt(root, origin, file, "model.attention.attn_scale", hf_number(hf, file, "attn_scale"));
      adopt(root, origin, file, "model.attention.floor_scale", hf_number(hf, file, "floor_scale"));
    }
    // A scaling on the layers without RoPE only (the export lists the layers it acts on).
    if (hf.contains("scaled_layers") && hf["scaled_layers"].is_array()) {
      const json& scaled = hf["scaled_layers"];
      const bool all = std::all_of(scaled.begin(), scaled.end(), [](const json& v) { return v == 1; });
      adopt(root, origin, file, "model.attention.scaled_layers", all ? "all" : "nope");
    }
  }

  const std::string tokenizer = (fs::path(dir) / "tokenizer.model").string();
  if (!fs::is_regular_file(tokenizer))
    throw UsageError(origin + ": init_from = '" + dir +
                     "' has no tokenizer.model (a sentencepiece model is needed to prepare the data)");
  adopt(root, origin, file, "data.tokenizer.model", tokenizer);
}

}  // namespace ssmax
