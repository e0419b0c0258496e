#include "export/export_model.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "export/safetensors.h"
#include "train/checkpoint.h"
#include "util/errors.h"
#include "util/files.h"

namespace ssmax {
namespace fs = std::filesystem;
using json = nlohmann::json;

ExportResult export_checkpoint(const std::string& target, const std::string& out, bool overwrite) {
  const fs::path weights = out;
  if (weights.extension() != ".safetensors")
    throw UsageError("--out " + out + ": the file name must end in .safetensors");
  const fs::path config_file = weights.parent_path() / (weights.stem().string() + ".config.json");
  for (const auto& path : {weights, config_file}) {
    if (fs::exists(path) && !fs::is_regular_file(path))  // --force replaces files, never a directory or a device
      throw UsageError(path.string() + ": exists and is not a regular file; choose another --out");
    if (fs::exists(path) && !overwrite) throw UsageError(path.string() + " already exists; pass --force to replace it");
  }
  if (!weights.parent_path().empty() && !fs::is_directory(weights.parent_path()))
    throw UsageError("--out " + out + ": directory " + weights.parent_path().string() + " does not exist");

  ExportResult result;
  const CheckpointInfo info = open_checkpoint(target);
  result.checkpoint = info.path;
  const CheckpointMeta& meta = info.meta;
  const Config& config = info.config;
  GPT model(GPTOptions{config.model, meta.vocab_size});
  load_checkpoint(result.checkpoint, model, nullptr);

  std::map<std::string, torch::Tensor> tensors;
  for (const auto& [name, tensor] : model->named_tensors_unpadded()) tensors[name] = tensor.contiguous();
  const json description = {
      {"format", "ssmax-gpt safetensors export"},
      {"step", meta.step},
      {"vocab_size", meta.vocab_size},
      {"tokenizer", meta.dataset_dir.empty() ? json(nullptr)  // the recall task's tokens need none
                                             : json((fs::path(meta.dataset_dir) / "tokenizer.model").string())},
      {"config", config_to_json(config)},
      {"conventions",
       {{"linear", "weight is [out_features, in_features]; y = x·Wᵀ (+ bias)"},
        {"attention", "h.{i}.attn.c_attn.weight is [(n_head + 2·n_kv_head)·head_dim, n_embd]: rows are q "
                      "(n_head heads), k, v (n_kv_head heads each; n_kv_head 0 = n_head), head-major; query head h "
                      "uses key/value head h / (n_head / n_kv_head)"},
        {"rope", "rotate-half: the pair (x[j], x[j + d/2]) rotates by position·θ^(-2j/d), applied to q and k"},
        {"normalizer", "h.{i}.attn.normalizer.s (and .b) are [n_head]; query at 0-based position t is scaled by "
                       "(s·ln(t+1) + b)/√head_dim before q·kᵀ"},
        {"tied_embeddings", "when model.tie_embeddings is true there is no lm_head.weight: logits = x·wte.weightᵀ"},
        {"norm", "rmsnorm: x·rsqrt(mean(x²)+1e-5)·weight; layernorm eps 1e-5"}}}};
  const std::string weight_bytes = safetensors_bytes(weights.string(), tensors,
                                                     {{"format", "pt"},
                                                      {"ssmax_gpt_step", std::to_string(meta.step)},
                                                      {"ssmax_gpt_config", description["config"].dump()}});
  const std::string description_text = description.dump(2) + "\n";
  // Both or neither: an export replaced with --force never pairs new weights with the old description.
  DurableFile weights_out(weights.string()), description_out(config_file.string());
  weights_out.write(weight_bytes.data(), weight_bytes.size());
  description_out.write(description_text.data(), description_text.size());
  DurableFile::commit_together({&weights_out, &description_out});
  result.weights_path = weights.string();
  result.config_path = config_file.string();
  result.step = meta.step;
  result.tensors = tensors.size();
  return result;
}

}  // namespace ssmax
