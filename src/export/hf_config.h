#pragma once
// `export --format hf`: which transformers class a model maps to, and the JSON files of a Hugging Face model
// directory (config.json, generation_config.json, the tokenizer's two files). Torch-free: the weights are
// export/hf_weights.h.
//
// Target: transformers 4.57.6 (scripts/test.sh installs it; tests/hf/check_hf_export.py checks logits, greedy
// decoding and the tokenizer against ours).
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "data/tokenizer.h"

namespace ssmax {

// The two layouts transformers has a class for. Llama: RoPE, RMSNorm, SwiGLU (LlamaForCausalLM). GPT-2: learned
// positions, LayerNorm, GELU (tanh), tied embeddings (GPT2LMHeadModel).
enum class HfArchitecture { Llama, GPT2 };

// The layout of `model`, or UsageError naming the config key and value that neither class can express and what
// is exportable. `checkpoint` names the model in the message.
HfArchitecture hf_architecture(const ModelConfig& model, const std::string& checkpoint);

// "float32" or "bfloat16" for --dtype f32 | bf16; UsageError otherwise.
std::string hf_torch_dtype(const std::string& dtype_option);

// config.json. Softmax models: the stock class (no custom code). SSMax: the class of modeling_ssmax.py with
// auto_map, attention_normalizer and ssmax_learn_s.
nlohmann::json hf_model_config(const ModelConfig& model, HfArchitecture arch, int64_t vocab_size,
                               const std::string& torch_dtype, const SpecialTokens& specials);

// generation_config.json: no EOS stop (ssmax-gpt's own generate never stops early; a model trained without EOS
// tokens would otherwise stop at a chance one), no sampling defaults beyond transformers'.
nlohmann::json hf_generation_config(const SpecialTokens& specials);

// tokenizer_config.json and special_tokens_map.json for the run's sentencepiece model (copied as tokenizer.model):
// LlamaTokenizer(Fast) with no BOS/EOS added and no dummy-prefix space, as src/data/tokenizer.cpp encodes. The
// special tokens are the model's own (a token it lacks is null: transformers would otherwise add one to the
// vocabulary).
nlohmann::json hf_tokenizer_config(const ModelConfig& model, const SpecialTokens& specials);
nlohmann::json hf_special_tokens_map(const SpecialTokens& specials);

// The transformers version these files are written for (config.json's "transformers_version").
inline constexpr const char* kTransformersVersion = "4.57.6";

}  // namespace ssmax
