#include "export/hf_config.h"

#include "util/errors.h"

namespace ssmax {
namespace {

using json = nlohmann::json;

const char* const kExportable =
    "exportable: Llama-shaped (model.position=rope or none, norm=rmsnorm, mlp=swiglu) or GPT-2-shaped "
    "(position=learned, norm=layernorm, mlp=gelu, tie_embeddings=true)";

[[noreturn]] void refuse(const std::string& checkpoint, const std::string& key, const std::string& value,
                         const std::string& why) {
  throw UsageError(checkpoint + ": model." + key + "=" + value + " " + why + " cannot be written as a Hugging Face " +
                   "model; " + kExportable);
}

json id_or_null(const SpecialToken& t) { return t.id >= 0 ? json(t.id) : json(nullptr); }
json piece_or_null(const SpecialToken& t) { return t.id >= 0 ? json(t.piece) : json(nullptr); }

}  // namespace

HfArchitecture hf_architecture(const ModelConfig& m, const std::string& checkpoint) {
  // The position encoding picks the family (NoPE layers are Llama layers without the rotation); every other key must
  // then agree with it.
  const bool llama = m.position != "learned";
  const std::string with = "with model.position=" + m.position;
  if (m.norm != (llama ? "rmsnorm" : "layernorm")) refuse(checkpoint, "norm", m.norm, with);
  if (m.mlp != (llama ? "swiglu" : "gelu")) refuse(checkpoint, "mlp", m.mlp, with);
  // GPT2LMHeadModel always ties its head to the token embedding.
  if (!llama && !m.tie_embeddings) refuse(checkpoint, "tie_embeddings", "false", with);
  // GPT-2's attention has one key/value head per query head.
  if (!llama && m.resolved_n_kv_head() != m.n_head)
    refuse(checkpoint, "n_kv_head", std::to_string(m.n_kv_head), with + " (GPT-2 has no grouped-query attention)");
  // Both classes compute the head dimension as n_embd / n_head; ours does too, so this holds for any trained model.
  if (m.n_embd % m.n_head != 0) refuse(checkpoint, "n_embd", std::to_string(m.n_embd), "(not a multiple of n_head)");
  // model.bias: Llama has attention_bias and mlp_bias; GPT-2 always has biases, so a bias-free GPT-2 model is
  // written with zero biases (export/hf_weights.cpp), which computes the same.
  return llama ? HfArchitecture::Llama : HfArchitecture::GPT2;
}

std::string hf_torch_dtype(const std::string& dtype) {
  if (dtype == "f32") return "float32";
  if (dtype == "bf16") return "bfloat16";
  throw UsageError("--dtype " + dtype + ": must be f32 or bf16");
}

json hf_model_config(const ModelConfig& m, HfArchitecture arch, int64_t vocab_size, const std::string& torch_dtype,
                     const SpecialTokens& specials) {
  // Layers without RoPE need the SSMax modeling code too (stock Llama rotates every layer), softmax or not.
  const bool nope = arch == HfArchitecture::Llama && (m.position == "none" || m.nope_every > 0);
  const bool custom = m.attention.normalizer != Normalizer::Softmax || nope;
  json c;
  if (arch == HfArchitecture::Llama) {
    c = {{"model_type", custom ? "ssmax_llama" : "llama"},
         {"architectures", {custom ? "SSMaxLlamaForCausalLM" : "LlamaForCausalLM"}},
         {"vocab_size", vocab_size},
         {"hidden_size", m.n_embd},
         {"intermediate_size", m.resolved_mlp_hidden()},
         {"num_hidden_layers", m.n_layer},
         {"num_attention_heads", m.n_head},
         {"num_key_value_heads", m.resolved_n_kv_head()},
         {"head_dim", m.n_embd / m.n_head},
         {"hidden_act", "silu"},
         // The training length. RoPE itself has no limit (the point of SSMax is to go beyond it); transformers uses
         // this only for defaults such as lm-eval's max_length.
         {"max_position_embeddings", m.block_size},
         {"rms_norm_eps", 1e-5},
         // Both rotate (x[j], x[j + d/2]) by position·θ^(-2j/d) ("rotate half"): q and k rows need no permutation.
         {"rope_theta", m.rope_theta},
         {"rope_scaling", nullptr},
         {"attention_bias", m.bias},
         {"mlp_bias", m.bias},
         // Llama has dropout on the attention weights only; ours also drops the residual branches and the
         // embeddings in training. Inference is the same either way.
         {"attention_dropout", m.dropout},
         {"tie_word_embeddings", m.tie_embeddings},
         {"initializer_range", 0.02},
         {"pretraining_tp", 1}};
  } else {
    c = {{"model_type", custom ? "ssmax_gpt2" : "gpt2"},
         {"architectures", {custom ? "SSMaxGPT2LMHeadModel" : "GPT2LMHeadModel"}},
         {"vocab_size", vocab_size},
         {"n_positions", m.block_size},
         {"n_ctx", m.block_size},
         {"n_embd", m.n_embd},
         {"n_layer", m.n_layer},
         {"n_head", m.n_head},
         {"n_inner", m.resolved_mlp_hidden()},
         {"activation_function", "gelu_new"},  // the tanh approximation, as src/kernels/fused_gelu.h
         {"layer_norm_epsilon", 1e-5},
         {"resid_pdrop", m.dropout},
         {"embd_pdrop", m.dropout},
         {"attn_pdrop", m.dropout},
         {"scale_attn_weights", true},
         {"scale_attn_by_inverse_layer_idx", false},
         {"reorder_and_upcast_attn", false},
         {"tie_word_embeddings", true},
         {"initializer_range", 0.02}};
  }
  c["bos_token_id"] = id_or_null(specials.bos);
  c["eos_token_id"] = id_or_null(specials.eos);
  c["use_cache"] = true;
  // Metadata for the reader: trained on packed windows with attention kept inside each document (a prompt is one
  // document, so inference needs nothing different).
  c["trained_with_document_mask"] = m.attention.document_mask;
  c["torch_dtype"] = torch_dtype;
  c["transformers_version"] = kTransformersVersion;
  if (nope) {
    // Llama 4's key: 1 for a layer that rotates q and k, 0 for a NoPE layer.
    json layers = json::array();
    for (int i = 0; i < m.n_layer; ++i) layers.push_back(m.layer_has_rope(i) ? 1 : 0);
    c["no_rope_layers"] = layers;
  }
  if (custom) {
    const std::string family = arch == HfArchitecture::Llama ? "Llama" : "GPT2";
    const std::string model_class = arch == HfArchitecture::Llama ? "SSMaxLlamaForCausalLM" : "SSMaxGPT2LMHeadModel";
    c["auto_map"] = {{"AutoConfig", "configuration_ssmax.SSMax" + family + "Config"},
                     {"AutoModelForCausalLM", "modeling_ssmax." + model_class}};
    c["attention_normalizer"] = normalizer_name(m.attention.normalizer);
    c["ssmax_learn_s"] = m.attention.learn_s;
    if (m.attention.normalizer == Normalizer::Logn) c["logn_length"] = m.resolved_logn_length();
    if (m.attention.normalizer == Normalizer::Llama4) {
      c["attn_scale"] = m.attention.attn_scale;
      c["floor_scale"] = m.resolved_floor_scale();
    }
    // Which layers a parameter-free scaling acts on: 1 scaled, 0 plain softmax (all 1 unless scaled_layers = nope).
    if (is_parameter_free_scaling(m.attention.normalizer)) {
      json layers = json::array();
      for (int i = 0; i < m.n_layer; ++i) layers.push_back(m.layer_is_scaled(i) ? 1 : 0);
      c["scaled_layers"] = layers;
    }
  }
  return c;
}

json hf_generation_config(const SpecialTokens& specials) {
  // Generation ends at the end-of-document token, as `ssmax-gpt generate` does.
  return {{"bos_token_id", id_or_null(specials.bos)},
          {"eos_token_id", id_or_null(specials.eos)},
          {"transformers_version", kTransformersVersion}};
}

json hf_tokenizer_config(const ModelConfig& m, const SpecialTokens& specials) {
  json c = {{"tokenizer_class", "LlamaTokenizer"},
            // src/data/tokenizer.cpp encodes text as it is: no BOS or EOS around it ...
            {"add_bos_token", false},
            {"add_eos_token", false},
            // ... and no space in front (the model is trained with add_dummy_prefix=false); legacy=false makes
            // transformers follow the model's own normalizer instead of Llama 1's.
            {"add_prefix_space", false},
            {"legacy", false},
            {"clean_up_tokenization_spaces", false},
            {"bos_token", piece_or_null(specials.bos)},
            {"eos_token", piece_or_null(specials.eos)},
            {"unk_token", piece_or_null(specials.unk)},
            {"pad_token", nullptr},
            {"sp_model_kwargs", json::object()}};
  // Learned positions end at block_size; a RoPE model keeps transformers' "no limit".
  if (m.position == "learned") c["model_max_length"] = m.block_size;
  return c;
}

json hf_special_tokens_map(const SpecialTokens& specials) {
  json map = json::object();
  for (const auto& [key, token] :
       {std::pair{"bos_token", &specials.bos}, {"eos_token", &specials.eos}, {"unk_token", &specials.unk}})
    if (token->id >= 0) map[key] = token->piece;
  return map;
}

}  // namespace ssmax
