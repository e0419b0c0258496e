#pragma once
// `train --init-from DIR`, the weights: a Hugging Face Llama checkpoint's tensors (model.safetensors, or the shards
// model.safetensors.index.json lists) copied into a GPT built from the config export/hf_import_config.h made.
//
// The inverse of export/hf_weights.h: q_proj, k_proj, v_proj stack into c_attn (q rows, then k, then v; k and v
// have n_kv_head heads); gate/up/down_proj are c_gate/c_fc/c_proj; RoPE needs no permutation (both rotate
// (x[j], x[j + d/2])). The embedding and an untied head fill the first vocab_size rows; the padding rows
// (model.vocab_multiple) stay zero.
#include <string>

#include "model/gpt.h"

namespace ssmax {

// Copies every tensor of the checkpoint in `dir` into `model`. Each of the model's parameters must be written,
// except an attention normalizer's s and b when the checkpoint has none (a softmax Llama converted to SSMax: they
// keep their initial values). A missing, extra or misshapen tensor, or a vocabulary of another size than the
// tokenizer's, is a RuntimeFailure naming the file and tensor.
void load_hf_weights(const std::string& dir, GPT& model);

}  // namespace ssmax
