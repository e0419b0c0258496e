#include "export/hf_import_check.h"

#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "config/json_paths.h"
#include "data/prepare.h"
#include "data/tokenizer.h"
#include "export/safetensors_header.h"
#include "util/errors.h"
#include "util/files.h"

namespace ssmax {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string shape_text(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

// config.json's vocab_size, which a Llama config.json always has (transformers writes it): a positive integer.
int64_t hf_vocab_size(const std::string& file) {
  const json hf = parse_json_strict(read_input_file(file, "Hugging Face config"), file);
  const json* vocab = hf.is_object() && hf.contains("vocab_size") ? &hf.at("vocab_size") : nullptr;
  if (!vocab || !vocab->is_number_integer() || vocab->get<int64_t>() <= 0)
    throw UsageError(file + ": vocab_size = " + (vocab ? vocab->dump() : std::string("(missing)")) +
                     " is not a positive integer (the number of the tokenizer's pieces and of the embedding's rows)");
  return vocab->get<int64_t>();
}

}  // namespace

std::vector<std::string> hf_checkpoint_files(const std::string& dir) {
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  const fs::path single = fs::path(dir) / "model.safetensors";
  std::set<std::string> files;
  if (fs::exists(index)) {
    const auto j = parse_json_strict(read_input_file(index.string(), "safetensors index"), index.string());
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      throw RuntimeFailure(index.string() + ": no 'weight_map' object (tensor name → shard file)");
    for (const auto& [name, shard] : j["weight_map"].items()) {
      if (!shard.is_string() || fs::path(shard.get<std::string>()).has_parent_path())
        throw RuntimeFailure(index.string() + ": weight_map['" + name + "'] = " + shard.dump() +
                             " is not a file name in the same directory");
      files.insert((fs::path(dir) / shard.get<std::string>()).string());
    }
  } else if (fs::exists(single)) {
    files.insert(single.string());
  } else {
    throw UsageError("init_from = '" + dir +
                     "': no model.safetensors or model.safetensors.index.json (PyTorch .bin weights are not read: "
                     "save with save_pretrained(..., safe_serialization=True))");
  }
  return {files.begin(), files.end()};
}

std::map<std::string, HfShape> hf_llama_shapes(const ModelConfig& m, int64_t vocab) {
  const int64_t E = m.n_embd, H = m.n_head, I = m.resolved_mlp_hidden();
  const int64_t kv_rows = m.resolved_n_kv_head() * (m.n_embd / m.n_head);
  const std::string hidden = "hidden_size", inter = "intermediate_size", kv = "num_key_value_heads·head_dim";
  std::map<std::string, HfShape> shapes = {{"model.embed_tokens.weight", {{vocab, E}, "vocab_size, " + hidden}},
                                           {"lm_head.weight", {{vocab, E}, "vocab_size, " + hidden}},
                                           {"model.norm.weight", {{E}, hidden}}};
  for (int layer = 0; layer < m.n_layer; ++layer) {
    const std::string p = "model.layers." + std::to_string(layer) + ".";
    const std::pair<std::string, HfShape> linear[] = {{"self_attn.q_proj", {{E, E}, hidden + ", " + hidden}},
                                                      {"self_attn.k_proj", {{kv_rows, E}, kv + ", " + hidden}},
                                                      {"self_attn.v_proj", {{kv_rows, E}, kv + ", " + hidden}},
                                                      {"self_attn.o_proj", {{E, E}, hidden + ", " + hidden}},
                                                      {"mlp.gate_proj", {{I, E}, inter + ", " + hidden}},
                                                      {"mlp.up_proj", {{I, E}, inter + ", " + hidden}},
                                                      {"mlp.down_proj", {{E, I}, hidden + ", " + inter}}};
    for (const auto& [module, weight] : linear) {
      shapes[p + module + ".weight"] = weight;
      // A bias has one value per output row: the weight's first dimension.
      if (m.bias) shapes[p + module + ".bias"] = {{weight.dims[0]}, weight.from.substr(0, weight.from.find(','))};
    }
    shapes[p + "input_layernorm.weight"] = shapes[p + "post_attention_layernorm.weight"] = {{E}, hidden};
    shapes[p + "self_attn.normalizer.s"] = shapes[p + "self_attn.normalizer.b"] = {{H}, "num_attention_heads"};
  }
  return shapes;
}

void check_hf_shape(const std::map<std::string, HfShape>& shapes, const std::string& dir, const std::string& file,
                    const std::string& name, const std::vector<int64_t>& dims) {
  const auto expected = shapes.find(name);
  if (expected == shapes.end() || expected->second.dims == dims) return;
  throw RuntimeFailure(file + ": " + name + " is " + shape_text(dims) + " but " +
                       (fs::path(dir) / "config.json").string() + " makes it " + shape_text(expected->second.dims) +
                       " (" + expected->second.from + ")");
}

void check_hf_checkpoint(const Config& config) {
  const std::string& dir = config.init_from;
  const std::string file = (fs::path(dir) / "config.json").string();
  const int64_t vocab = hf_vocab_size(file);
  const std::string tokenizer = (fs::path(dir) / "tokenizer.model").string();
  const int pieces = Tokenizer::load(tokenizer).vocab_size();
  if (pieces != vocab)
    throw UsageError(file + ": vocab_size = " + std::to_string(vocab) + " but " + tokenizer + " has " +
                     std::to_string(pieces) + " pieces; they must be equal (the embedding has a row for each piece)");
  const auto shapes = hf_llama_shapes(config.model, vocab);
  for (const auto& path : hf_checkpoint_files(dir))
    for (const auto& tensor : read_safetensors_layout(path).tensors)
      check_hf_shape(shapes, dir, path, tensor.name, tensor.shape);
  check_prepared(config.data);
}

}  // namespace ssmax
