#pragma once
// What the two parity tests with the independent reference share (test_reference_parity.cpp: logits and loss;
// test_reference_training.cpp: gradients and AdamW steps): the models they build, how a case's model is exported,
// the packed-document positions and how the reference is run.
#include <torch/torch.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "export/export_model.h"
#include "test_util.h"
#include "train/checkpoint.h"

namespace ssmax {

// A model with every parameter moved off its initial value (norm weights ≠ 1, biases ≠ 0, s and b
// different per head), so that a convention the reference gets wrong cannot hide behind a neutral value, and
// weights large enough that attention is peaked (scores of several units) and the logits far from uniform.
inline void perturb(GPT& model) {
  torch::NoGradGuard no_grad;
  for (auto& item : model->named_parameters()) {
    auto& p = item.value();
    if (item.key().find("normalizer.s") != std::string::npos) p.uniform_(0.2, 1.5);
    else if (item.key().find("normalizer.b") != std::string::npos) p.uniform_(-0.5, 0.5);
    else if (item.key().find("ln_") != std::string::npos) p.add_(torch::randn_like(p) * 0.2);
    else p.normal_(0.0, 0.15);
  }
}

// Document starts, when a case is packed: row 0 holds several documents (one of length 1), row 1 starts mid-window.
inline torch::Tensor packed_positions(int64_t length) {
  std::vector<int64_t> starts[2] = {{0, 3, 4, length / 2 + 1}, {0, length - 5}};
  auto positions = torch::empty({2, length}, torch::kLong);
  for (int64_t row = 0; row < 2; ++row)
    for (int64_t t = 0, start = 0; t < length; ++t) {
      for (int64_t s : starts[row])
        if (s <= t) start = s;
      positions[row][t] = t - start;
    }
  return positions;
}

// A model of `config` (from the current torch seed) with every parameter moved off its initial value.
inline GPT perturbed_model(const Config& config, int64_t vocab) {
  GPT model(GPTOptions{config.model, vocab});
  perturb(model);
  return model;
}

// `model` exported to DIR/model.safetensors (+ model.config.json) as a user would: a checkpoint in a run directory,
// then `export_checkpoint`.
inline void export_as_a_user_would(GPT& model, const Config& config, int64_t vocab, const std::string& dir) {
  namespace fs = std::filesystem;
  torch::optim::AdamW optimizer(model->parameters());
  CheckpointMeta meta;
  meta.step = 1;
  meta.vocab_size = vocab;
  meta.config = config_to_json(config);
  const std::string run = dir + "/run";
  fs::create_directories(run + "/checkpoints");
  { std::ofstream(run + "/config.json") << meta.config.dump(); }
  save_checkpoint(checkpoint_path(run, 1), model, optimizer, meta);
  export_checkpoint(run, dir + "/model.safetensors", false);
  fs::remove_all(run);
}

// A two-layer, two-head model of width 16 in the given shape; small RoPE θ, so that positions beyond the training
// length turn visibly.
inline Config case_config(const char* normalizer, const char* position, const char* norm, const char* mlp, bool tied,
                          int64_t block) {
  Config config;
  config.model.n_layer = 2;
  config.model.n_head = 2;
  config.model.n_embd = 16;
  config.model.block_size = static_cast<int>(block);
  config.model.attention.normalizer = *normalizer_from_name(normalizer);
  config.model.position = position;
  config.model.rope_theta = 500.0;
  config.model.norm = norm;
  config.model.mlp = mlp;
  config.model.tie_embeddings = tied;
  return config;
}

inline std::string run_command(const std::string& command, int* status) {
  std::string output;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return "popen failed";
  std::array<char, 512> buffer{};
  while (fgets(buffer.data(), buffer.size(), pipe)) output += buffer.data();
  *status = pclose(pipe);
  return output;
}

}  // namespace ssmax
