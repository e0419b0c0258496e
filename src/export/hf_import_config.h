#pragma once
// `train --init-from DIR` (config key init_from), the torch-free half: a Hugging Face Llama directory's config.json
// becomes the run's model section, and its tokenizer.model the run's tokenizer. The weights are export/hf_import.h.
//
// Read: LlamaForCausalLM, and ssmax-gpt's own export SSMaxLlamaForCausalLM (export/hf_config.h), with
// rope_scaling unset, hidden_act silu, rms_norm_eps 1e-5 (ours is fixed) and attention_bias = mlp_bias.
#include <string>

#include <nlohmann/json.hpp>

#include "train/trainer.h"  // ModelInitializer

namespace ssmax {

// The config JSON `root` (a config file with --set overrides applied) with its model section and
// data.tokenizer.model filled from root["init_from"]'s config.json. A key the user set explicitly must agree with
// the checkpoint (UsageError naming both values); model.block_size is the checkpoint's max_position_embeddings
// unless the user set it. An unsupported architecture is a UsageError naming the file, key and value.
// `origin` names the config in messages. No init_from (or "") leaves `root` as it is.
void apply_hf_init(nlohmann::json& root, const std::string& origin);

// What `train` runs for a config whose init_from = `dir` (after apply_hf_init): the checkpoint's own checks before
// anything is written (export/hf_import_check.h), then its weights into the built model (export/hf_import.h).
ModelInitializer hf_model_initializer(const std::string& dir);

}  // namespace ssmax
