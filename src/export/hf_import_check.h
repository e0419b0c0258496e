#pragma once
// `train --init-from DIR`, checked before a run directory exists or a byte of data is prepared: DIR's files must agree
// with each other (config.json's vocab_size, tokenizer.model's pieces, every tensor's shape in the safetensors
// headers) and with data.prepared. Torch-free, and cheap: it reads the headers, never the weights
// (export/hf_import.h copies those later, after the data is prepared).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "config/config.h"

namespace ssmax {

// The safetensors files of the checkpoint in `dir`: model.safetensors, or every shard
// model.safetensors.index.json names (each once). Neither: a UsageError (PyTorch .bin weights are not read).
std::vector<std::string> hf_checkpoint_files(const std::string& dir);

struct HfShape {
  std::vector<int64_t> dims;
  std::string from;  // the config.json keys that make it, for messages: "vocab_size, hidden_size"
};

// Every tensor a Llama checkpoint of `model` with a `vocab`-piece tokenizer may hold, by transformers' name, with the
// shape config.json gives it (biases included when model.bias; the normalizer's s and b, one value per head).
std::map<std::string, HfShape> hf_llama_shapes(const ModelConfig& model, int64_t vocab);

// Refuses (RuntimeFailure) tensor `name` of `file` when its `dims` are not those `shapes` gives it, naming the file,
// the tensor, both shapes and the keys of `dir`/config.json. A name `shapes` lacks passes: an unexpected tensor is
// refused where the weights are copied.
void check_hf_shape(const std::map<std::string, HfShape>& shapes, const std::string& dir, const std::string& file,
                    const std::string& name, const std::vector<int64_t>& dims);

// For a config whose init_from is set (apply_hf_init applied): config.json's vocab_size must be a positive integer
// equal to tokenizer.model's pieces (UsageError naming both; a tokenizer.model that does not load is a
// RuntimeFailure naming it); every safetensors header must be intact (RuntimeFailure, read_safetensors_layout) and
// every tensor of the shape config.json gives it (check_hf_shape); data.prepared, when set, must have been encoded
// with that tokenizer (check_prepared, data/prepare.h).
void check_hf_checkpoint(const Config& config);

}  // namespace ssmax
