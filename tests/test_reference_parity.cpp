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

#include "export/safetensors.h"
#include "reference_cases.h"

namespace ssmax {
namespace {

void write_case(const std::string& dir, const Config& config, int64_t vocab, int64_t length, uint64_t seed,
                bool packed = false) {
  torch::manual_seed(seed);
  GPT model = perturbed_model(config, vocab);
  model->eval();
  export_as_a_user_would(model, config, vocab, dir);

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
