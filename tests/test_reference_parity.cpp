// Parity with an independent implementation: tests/reference/reference_gpt.py (plain PyTorch, float64, written
// from the README's maths) loads our safetensors export and must reproduce our logits and loss.
// Matrix: softmax/ssmax/ssmax_bias × learned/RoPE × LayerNorm/RMSNorm × GELU/SwiGLU × tied/untied; RoPE cases
// run to 3× the training length; grouped-query attention; no position encoding (NoPE) and RoPE interleaved with NoPE
// layers; the length-aware scalings logn and llama4; document masking (packed windows, positions per row).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "export/export_model.h"
#include "export/safetensors.h"
#include "test_util.h"
#include "train/checkpoint.h"

namespace ssmax {
namespace {
namespace fs = std::filesystem;

// A model with every parameter moved off its initial value (norm weights ≠ 1, biases ≠ 0, s and b
// different per head), so that a convention the reference gets wrong cannot hide behind a neutral value, and
// weights large enough that attention is peaked (scores of several units) and the logits far from uniform.
void perturb(GPT& model) {
  torch::NoGradGuard no_grad;
  for (auto& item : model->named_parameters()) {
    auto& p = item.value();
    if (item.key().find("normalizer.s") != std::string::npos) p.uniform_(0.2, 1.5);
    else if (item.key().find("normalizer.b") != std::string::npos) p.uniform_(-0.5, 0.5);
    else if (item.key().find("ln_") != std::string::npos) p.add_(torch::randn_like(p) * 0.2);
    else p.normal_(0.0, 0.15);
  }
}

// Writes one case directory: the model exported as a user would, plus inputs and what we computed.
// Document starts, when `packed`: row 0 holds several documents (one of length 1), row 1 starts mid-window.
torch::Tensor packed_positions(int64_t length) {
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

void write_case(const std::string& dir, const Config& config, int64_t vocab, int64_t length, uint64_t seed,
                bool packed = false) {
  torch::manual_seed(seed);
  GPT model(GPTOptions{config.model, vocab});
  perturb(model);
  model->eval();
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

  torch::NoGradGuard no_grad;
  auto idx = torch::randint(vocab, {2, length}, torch::kLong);
  auto targets = torch::randint(vocab, {2, length}, torch::kLong);
  const torch::Tensor positions = packed ? packed_positions(length) : torch::Tensor();
  auto logits = model->forward(idx, nullptr, nullptr, positions);
  auto loss = torch::nn::functional::cross_entropy(logits.view({-1, vocab}), targets.view({-1}));
  std::map<std::string, torch::Tensor> tensors = {
      {"idx", idx}, {"targets", targets}, {"logits", logits}, {"loss", loss.view({1})}};
  if (packed) tensors["positions"] = positions;
  write_safetensors(dir + "/inputs.safetensors", tensors, {});
}

// A two-layer, two-head model of width 16 in the given shape; small RoPE θ, so that positions beyond the training
// length turn visibly.
Config case_config(const char* normalizer, const char* position, const char* norm, const char* mlp, bool tied,
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

std::string run_command(const std::string& command, int* status) {
  std::string output;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return "popen failed";
  std::array<char, 512> buffer{};
  while (fgets(buffer.data(), buffer.size(), pipe)) output += buffer.data();
  *status = pclose(pipe);
  return output;
}

TEST(ReferenceParity, ExportMatchesIndependentPyTorchOverTheConfigMatrix) {
  const std::string dir = test_dir("reference-parity");
  const int64_t vocab = 37, block = 12;
  int cases = 0;
  for (const char* normalizer : {"softmax", "ssmax", "ssmax_bias"})
    for (const char* position : {"learned", "rope"})
      for (const char* norm : {"layernorm", "rmsnorm"})
        for (const char* mlp : {"gelu", "swiglu"})
          for (bool tied : {true, false}) {
            Config config = case_config(normalizer, position, norm, mlp, tied, block);
            config.model.bias = std::string(norm) == "layernorm" && tied;  // biases in a quarter of the cases
            const std::string name =
                std::string(normalizer) + "-" + position + "-" + norm + "-" + mlp + (tied ? "-tied" : "-untied");
            const int64_t length = std::string(position) == "rope" ? 3 * block : block;
            write_case(dir + "/" + name, config, vocab, length, 100 + cases++);
          }
  // Grouped-query attention (4 query heads sharing 2 key/value heads) in the Llama-shaped block, per normalizer.
  for (const char* normalizer : {"softmax", "ssmax", "ssmax_bias"}) {
    Config config = case_config(normalizer, "rope", "rmsnorm", "swiglu", false, block);
    config.model.n_head = 4;
    config.model.n_kv_head = 2;
    write_case(dir + "/gqa-" + normalizer, config, vocab, 3 * block, 100 + cases++);
  }
  // No position encoding (NoPE), and RoPE with every second layer left without (Llama 4's interleaving), per
  // normalizer, in the Llama-shaped block to 3× the training length.
  for (const char* normalizer : {"softmax", "ssmax", "ssmax_bias"})
    for (const int nope_every : {0, 2}) {
      Config config = case_config(normalizer, nope_every ? "rope" : "none", "rmsnorm", "swiglu", false, block);
      config.model.nope_every = nope_every;
      write_case(dir + "/" + (nope_every ? "irope-" : "nope-") + normalizer, config, vocab, 3 * block, 100 + cases++);
    }
  // The length-aware scalings (logn: Qwen-1; llama4: Llama 4's temperature, a = 0.5 to be visible), to 3× the
  // training length where they step away from 1: on every layer, on the layers without RoPE only (Llama 4's layout),
  // and per document.
  struct Scaling {
    const char* name;
    const char* normalizer;
    const char* position;
    int nope_every;
    const char* scaled_layers;
    bool packed;
  };
  for (const Scaling& c :
       {Scaling{"logn-rope", "logn", "rope", 0, "all", false}, Scaling{"logn-nope", "logn", "none", 0, "all", false},
        Scaling{"llama4-rope", "llama4", "rope", 0, "all", false},
        Scaling{"llama4-irope-scaled-nope", "llama4", "rope", 2, "nope", false},
        Scaling{"llama4-documents", "llama4", "rope", 0, "all", true}}) {
    Config config = case_config(c.normalizer, c.position, "rmsnorm", "swiglu", false, block);
    config.model.nope_every = c.nope_every;
    config.model.attention.scaled_layers = c.scaled_layers;
    config.model.attention.attn_scale = 0.5;
    config.model.attention.document_mask = c.packed;
    write_case(dir + "/" + c.name, config, vocab, 3 * block, 100 + cases++, c.packed);
  }
  // Document masking: each normalizer with learned positions (GPT-2 block) and RoPE (Llama block, 2× the length).
  for (const char* normalizer : {"softmax", "ssmax", "ssmax_bias"})
    for (const char* position : {"learned", "rope"}) {
      const bool rope = std::string(position) == "rope";
      Config config = rope ? case_config(normalizer, position, "rmsnorm", "swiglu", false, block)
                           : case_config(normalizer, position, "layernorm", "gelu", true, block);
      config.model.attention.document_mask = true;
      write_case(dir + "/documents-" + normalizer + "-" + position, config, vocab, rope ? 2 * block : block,
                 100 + cases++, /*packed=*/true);
    }
  ASSERT_EQ(cases, 68);
  int status = 0;
  const std::string output = run_command(std::string("'") + SSMAX_PYTHON + "' '" + SSMAX_SOURCE_DIR +
                                             "/tests/reference/reference_gpt.py' '" + dir + "' --tol 1e-5",
                                         &status);
  EXPECT_EQ(status, 0) << output;
  EXPECT_NE(output.find("68 passed, 0 failed"), std::string::npos) << output;
}

}  // namespace
}  // namespace ssmax
