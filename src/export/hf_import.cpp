#include "export/hf_import.h"

#include <map>
#include <regex>
#include <set>

#include "export/hf_import_check.h"
#include "export/hf_import_config.h"
#include "export/safetensors.h"
#include "util/errors.h"

namespace ssmax {
namespace {

struct HfTensors {
  std::map<std::string, torch::Tensor> tensors;
  std::map<std::string, std::string> file_of;  // tensor name → the file it came from (for messages)
};

// model.safetensors, or every shard the index names (each read once).
HfTensors read_checkpoint(const std::string& dir) {
  HfTensors out;
  for (const auto& file : hf_checkpoint_files(dir))
    for (auto& [name, tensor] : read_safetensors(file).tensors) {
      if (out.tensors.count(name)) throw RuntimeFailure(file + ": tensor " + name + " is also in " + out.file_of[name]);
      out.tensors[name] = tensor;
      out.file_of[name] = file;
    }
  return out;
}

// The checkpoint's name(s) for one of our parameters; several are stacked along rows (c_attn: q, k, v).
std::vector<std::string> hf_names(const std::string& ours) {
  static const std::regex block(R"(h\.(\d+)\.(.+))");
  std::smatch m;
  if (ours == "wte.weight") return {"model.embed_tokens.weight"};
  if (ours == "lm_head.weight") return {"lm_head.weight"};
  if (ours == "ln_f.weight") return {"model.norm.weight"};
  if (!std::regex_match(ours, m, block)) return {};
  const std::string p = "model.layers." + m[1].str() + ".", rest = m[2];
  const auto kind = rest.substr(rest.rfind('.') + 1);  // weight | bias | s | b
  if (rest == "ln_1.weight") return {p + "input_layernorm.weight"};
  if (rest == "ln_2.weight") return {p + "post_attention_layernorm.weight"};
  if (rest.rfind("attn.c_attn.", 0) == 0)
    return {p + "self_attn.q_proj." + kind, p + "self_attn.k_proj." + kind, p + "self_attn.v_proj." + kind};
  if (rest.rfind("attn.c_proj.", 0) == 0) return {p + "self_attn.o_proj." + kind};
  if (rest.rfind("attn.normalizer.", 0) == 0) return {p + "self_attn.normalizer." + kind};
  if (rest.rfind("mlp.c_gate.", 0) == 0) return {p + "mlp.gate_proj." + kind};
  if (rest.rfind("mlp.c_fc.", 0) == 0) return {p + "mlp.up_proj." + kind};
  if (rest.rfind("mlp.c_proj.", 0) == 0) return {p + "mlp.down_proj." + kind};
  return {};
}

}  // namespace

void load_hf_weights(const std::string& dir, GPT& model) {
  HfTensors hf = read_checkpoint(dir);
  std::set<std::string> unused;
  for (const auto& [name, t] : hf.tensors) unused.insert(name);
  // transformers ties lm_head to embed_tokens; a checkpoint that still stores the tied copy has nothing new in it.
  if (model->options().model.tie_embeddings) unused.erase("lm_head.weight");

  const int64_t vocab = model->options().vocab_size;
  const auto shapes = hf_llama_shapes(model->options().model, vocab);
  torch::NoGradGuard no_grad;
  for (const auto& item : model->named_parameters()) {
    const std::string& name = item.key();
    const auto names = hf_names(name);
    if (names.empty()) throw RuntimeFailure("init_from: no Hugging Face Llama name for our parameter " + name);
    const bool normalizer = name.find("attn.normalizer.") != std::string::npos;
    if (normalizer && !hf.tensors.count(names[0])) continue;  // a softmax Llama switched to SSMax: s, b start new
    std::vector<torch::Tensor> parts;
    for (const auto& n : names) {
      if (!hf.tensors.count(n))
        throw RuntimeFailure("init_from = '" + dir + "': the checkpoint has no tensor " + n + " (for our " + name +
                             ")");
      // Each part on its own: q, k and v that disagree with config.json would fail inside cat, naming none of them.
      check_hf_shape(shapes, dir, hf.file_of[n], n, hf.tensors[n].sizes().vec());
      parts.push_back(hf.tensors[n].to(torch::kFloat32));
      unused.erase(n);
    }
    auto source = parts.size() == 1 ? parts[0] : torch::cat(parts, 0);
    auto target = item.value();
    if (GPTImpl::has_vocabulary_rows(name)) target = target.narrow(0, 0, vocab);  // the padding rows stay zero
    // The parts have config.json's shapes, so this fails only if hf_llama_shapes and the model disagree.
    if (source.sizes() != target.sizes())
      throw RuntimeFailure("init_from: our " + name + " is " + c10::str(target.sizes()) + " but " + names[0] +
                           (names.size() > 1 ? " with k, v" : "") + " makes " + c10::str(source.sizes()));
    target.copy_(source);
  }
  // Rotary tables are recomputed, never stored by current transformers, but older saves have them.
  for (auto it = unused.begin(); it != unused.end();)
    it = it->find("rotary_emb.inv_freq") != std::string::npos ? unused.erase(it) : std::next(it);
  if (!unused.empty())
    throw RuntimeFailure("init_from = '" + dir + "': tensor " + *unused.begin() + " (in " +
                         hf.file_of[*unused.begin()] + ") has no place in the model config.json describes (" +
                         std::to_string(unused.size()) + " such tensors)");
}

ModelInitializer hf_model_initializer(const std::string& dir) {
  return {[](const Config& config) { check_hf_checkpoint(config); },
          [](const Config& config, GPT& model) { load_hf_weights(config.init_from, model); },
          "the Hugging Face checkpoint in " + dir};
}

}  // namespace ssmax
