#pragma once
// `export --format hf`: a model's weights under the tensor names and layouts of transformers' LlamaForCausalLM or
// GPT2LMHeadModel (export/hf_config.h picks which).
//
//   ours                        Llama (model.*)                          GPT-2 (transformer.*), Conv1D = [in, out]
//   wte.weight                  embed_tokens.weight                      wte.weight
//   wpe.weight                  -                                        wpe.weight
//   h.i.ln_1.{weight,bias}      layers.i.input_layernorm.weight          h.i.ln_1.{weight,bias}
//   h.i.attn.c_attn.{w,b}       layers.i.self_attn.{q,k,v}_proj (rows    h.i.attn.c_attn (transposed)
//                               0:C, C:2C, 2C:3C)
//   h.i.attn.c_proj             layers.i.self_attn.o_proj                h.i.attn.c_proj (transposed)
//   h.i.attn.normalizer.{s,b}   layers.i.self_attn.normalizer.{s,b}      h.i.attn.normalizer.{s,b}  (SSMax only)
//   h.i.ln_2                    layers.i.post_attention_layernorm        h.i.ln_2
//   h.i.mlp.c_gate / c_fc       layers.i.mlp.gate_proj / up_proj         - / h.i.mlp.c_fc (transposed)
//   h.i.mlp.c_proj              layers.i.mlp.down_proj                   h.i.mlp.c_proj (transposed)
//   ln_f                        norm                                     ln_f
//   lm_head.weight (untied)     lm_head.weight (top level)               - (GPT-2 is always tied)
//
// No permutation of q/k rows: our RoPE and transformers' Llama both rotate the pair (x[j], x[j + d/2]). GPT-2 has
// biases everywhere; a model.bias=false model gets zero biases (LayerNorm and linear), which computes the same.
#include <torch/torch.h>

#include <map>
#include <string>

#include "export/hf_config.h"
#include "model/gpt.h"

namespace ssmax {

// Every tensor of the Hugging Face model, float32 on the CPU (contiguous), or `dtype` when given (bf16 export).
// Throws RuntimeFailure naming a parameter the mapping does not know (a model feature added without an export).
std::map<std::string, torch::Tensor> hf_state_dict(GPT& model, HfArchitecture arch,
                                                   torch::ScalarType dtype = torch::kFloat32);

}  // namespace ssmax
