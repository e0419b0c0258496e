#include "export/hf_weights.h"

#include <regex>

#include "util/errors.h"

namespace ssmax {
namespace {

using Tensors = std::map<std::string, torch::Tensor>;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// One block's tensors, keyed by our name inside the block ("attn.c_attn.weight", ...).
void map_llama_block(const std::string& p, const Tensors& ours, int64_t C, Tensors& out) {
  for (const auto& [name, t] : ours) {
    if (name == "ln_1.weight") out[p + "input_layernorm.weight"] = t;
    else if (name == "ln_2.weight") out[p + "post_attention_layernorm.weight"] = t;
    else if (name == "attn.c_attn.weight" || name == "attn.c_attn.bias") {
      const std::string kind = ends_with(name, "weight") ? "weight" : "bias";
      const int64_t kv_rows = (t.size(0) - C) / 2;  // n_kv_head·head_dim (C without grouped-query attention)
      const auto parts = t.split_with_sizes({C, kv_rows, kv_rows}, 0);  // rows q | k | v
      out[p + "self_attn.q_proj." + kind] = parts[0];
      out[p + "self_attn.k_proj." + kind] = parts[1];
      out[p + "self_attn.v_proj." + kind] = parts[2];
    } else if (name == "attn.c_proj.weight") out[p + "self_attn.o_proj.weight"] = t;
    else if (name == "attn.c_proj.bias") out[p + "self_attn.o_proj.bias"] = t;
    else if (name.rfind("attn.normalizer.", 0) == 0) out[p + "self_attn." + name.substr(5)] = t;  // as they are
    else if (name.rfind("mlp.c_gate.", 0) == 0) out[p + "mlp.gate_proj." + name.substr(11)] = t;
    else if (name.rfind("mlp.c_fc.", 0) == 0) out[p + "mlp.up_proj." + name.substr(9)] = t;
    else if (name.rfind("mlp.c_proj.", 0) == 0) out[p + "mlp.down_proj." + name.substr(11)] = t;
    else throw RuntimeFailure("export --format hf: no Llama name for parameter h.*." + name);
  }
}

void map_gpt2_block(const std::string& p, const Tensors& ours, Tensors& out) {
  for (const auto& [name, t] : ours) {
    const bool linear = name.rfind("attn.c_", 0) == 0 || name.rfind("mlp.c_", 0) == 0;
    const bool layer_norm = name.rfind("ln_", 0) == 0;
    if (!linear && !layer_norm && name.rfind("attn.normalizer.", 0) != 0)
      throw RuntimeFailure("export --format hf: no GPT-2 name for parameter h.*." + name);
    // Conv1D keeps its weight as [in, out]: ours (nn.Linear) transposed.
    out[p + name] = linear && ends_with(name, ".weight") ? t.t() : t;
  }
  // A bias-free model: the zero biases GPT-2's modules always have.
  for (const std::string module : {"ln_1", "ln_2", "attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"}) {
    const std::string weight = p + module + ".weight", bias = p + module + ".bias";
    if (out.count(bias)) continue;
    const auto& w = out.at(weight);
    out[bias] = torch::zeros({w.size(-1)}, w.options());  // [C] for a norm, [out] for a Conv1D
  }
}

}  // namespace

Tensors hf_state_dict(GPT& model, HfArchitecture arch, torch::ScalarType dtype) {
  const bool llama = arch == HfArchitecture::Llama;
  const int64_t C = model->options().model.n_embd;
  std::map<int, Tensors> blocks;
  Tensors top, out;
  static const std::regex block_name(R"(h\.(\d+)\.(.+))");
  for (const auto& [name, tensor] : model->named_tensors_unpadded()) {  // the tokenizer's rows only
    const auto t = tensor.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    std::smatch match;
    if (std::regex_match(name, match, block_name)) blocks[std::stoi(match[1])][match[2]] = t;
    else top[name] = t;
  }
  const std::string root = llama ? "model." : "transformer.";
  for (const auto& [i, tensors] : blocks) {
    const std::string prefix = root + (llama ? "layers." : "h.") + std::to_string(i) + ".";
    if (llama) map_llama_block(prefix, tensors, C, out);
    else map_gpt2_block(prefix, tensors, out);
  }
  for (const auto& [name, t] : top) {
    if (name == "wte.weight") out[root + (llama ? "embed_tokens.weight" : "wte.weight")] = t;
    else if (name == "wpe.weight" && !llama) out[root + "wpe.weight"] = t;
    else if (name == "ln_f.weight") out[root + (llama ? "norm.weight" : "ln_f.weight")] = t;
    else if (name == "ln_f.bias" && !llama) out[root + "ln_f.bias"] = t;
    else if (name == "lm_head.weight" && llama) out["lm_head.weight"] = t;
    else
      throw RuntimeFailure("export --format hf: no " + std::string(llama ? "Llama" : "GPT-2") + " name for parameter " +
                           name);
  }
  if (!llama && !out.count("transformer.ln_f.bias"))
    out["transformer.ln_f.bias"] = torch::zeros({C}, out.at("transformer.ln_f.weight").options());
  for (auto& [name, t] : out) t = t.to(dtype).contiguous();
  return out;
}

}  // namespace ssmax
