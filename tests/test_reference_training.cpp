// Training parity with an independent implementation, as llm.c's test_gpt2 checks its trainer against PyTorch:
// every parameter's gradient and three AdamW steps (the loss before each, every weight after each) of ssmax-gpt's
// training step (model->loss, backward, clip_grad_norm, the fused AdamW of make_optimizer) against
// tests/reference/reference_training.py (the float64 forward of reference_gpt.py, autograd, torch.optim.AdamW).
// Cases: softmax, ssmax and ssmax_bias × the GPT-2 block, the Llama block and packed documents with the mask, and s
// learned or fixed. One test per case, so a failure names it; the reference runs once for all of them.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <string>

#include "export/safetensors.h"
#include "reference_cases.h"
#include "train/optimizer.h"

namespace ssmax {
namespace {

struct TrainingCase {
  const char* normalizer;
  const char* block;  // gpt2 | llama | documents (the Llama block, packed windows, document_mask)
  bool learn_s;
};

std::string case_name(const TrainingCase& c) {
  return std::string(c.normalizer) + "_" + c.block + (c.learn_s ? "" : "_fixed_s");
}

constexpr int64_t kVocab = 37, kBlock = 12, kSteps = 3;

Config training_config(const TrainingCase& c) {
  const std::string block = c.block;
  Config config = block == "gpt2" ? case_config(c.normalizer, "learned", "layernorm", "gelu", true, kBlock)
                                  : case_config(c.normalizer, "rope", "rmsnorm", "swiglu", false, kBlock);
  config.model.bias = block == "gpt2";
  config.model.attention.learn_s = c.learn_s;
  config.model.attention.document_mask = block == "documents";
  // A learning rate that moves the weights visibly in three steps; the clip at 1 is reached by these weights' large
  // gradients. eps = 1e-4 keeps Adam's update of a gradient that is zero up to rounding (float32 here, float64 there)
  // proportional to it instead of ±lr: the steps compare the optimiser's arithmetic, not the sign of rounding noise.
  config.optim.lr = 1e-2;
  config.optim.eps = 1e-4;
  config.optim.weight_decay = 0.1;
  config.optim.grad_clip = 1.0;
  return config;
}

// The model exported before training, then kSteps steps on fixed batches with what they computed.
void write_training_case(const std::string& dir, const TrainingCase& c, uint64_t seed) {
  const Config config = training_config(c);
  torch::manual_seed(seed);
  GPT model = perturbed_model(config, kVocab);
  model->train();
  export_as_a_user_would(model, config, kVocab, dir);
  auto optimizer = make_optimizer(*model, config.optim);
  std::vector<torch::Tensor> trainable;
  for (const auto& p : model->parameters())
    if (p.requires_grad()) trainable.push_back(p);
  const bool packed = config.model.attention.document_mask;
  std::map<std::string, torch::Tensor> out;
  std::vector<double> losses;
  for (int64_t k = 0; k < kSteps; ++k) {
    const std::string step = std::to_string(k);
    auto idx = torch::randint(kVocab, {2, kBlock}, torch::kLong), targets = torch::randint(kVocab, {2, kBlock});
    out["idx_" + step] = idx;
    out["targets_" + step] = targets;
    torch::Tensor positions;
    if (packed) out["positions_" + step] = positions = packed_positions(kBlock);
    optimizer->zero_grad();
    auto loss = model->loss(idx, targets, positions);
    loss.backward();
    losses.push_back(loss.item<double>());
    if (k == 0)
      for (const auto& item : model->named_parameters())
        if (item.value().grad().defined()) {
          const auto grad = item.value().grad().clone();  // the clip below scales the gradients in place
          out["grad/" + item.key()] = GPTImpl::has_vocabulary_rows(item.key()) ? grad.narrow(0, 0, kVocab) : grad;
        }
    clip_grad_norm(trainable, config.optim.grad_clip);
    optimizer->step();
    for (const auto& [name, tensor] : model->named_tensors_unpadded())
      out["after_" + step + "/" + name] = tensor.detach().clone();
  }
  out["loss"] = torch::tensor(losses, torch::kFloat);
  for (auto& [name, tensor] : out) tensor = tensor.contiguous();
  write_safetensors(dir + "/training.safetensors", out, {});
}

std::vector<TrainingCase> all_cases() {
  std::vector<TrainingCase> cases;
  for (const char* normalizer : {"softmax", "ssmax", "ssmax_bias"})
    for (const char* block : {"gpt2", "llama", "documents"})
      for (const bool learn_s : {true, false})
        if (learn_s || std::string(normalizer) != "softmax") cases.push_back({normalizer, block, learn_s});
  return cases;
}

class ReferenceTraining : public ::testing::TestWithParam<TrainingCase> {};

// Each case in a directory of its own, checked by one run of the reference on that directory: ctest runs every case
// as a process of its own, two at a time, so nothing may be shared between them (a suite-wide set-up in one shared
// directory had the processes delete each other's files).
TEST_P(ReferenceTraining, GradientsAndAdamWStepsMatchTheReference) {
  const std::string name = case_name(GetParam());
  const auto cases = all_cases();
  uint64_t seed = 300;  // each case its own data and initialisation
  for (const auto& c : cases) {
    if (case_name(c) == name) break;
    ++seed;
  }
  const std::string dir = test_dir("reference-training/" + name);
  write_training_case(dir + "/" + name, GetParam(), seed);
  int status = 0;
  const std::string output = run_command(std::string("'") + SSMAX_PYTHON + "' '" + SSMAX_SOURCE_DIR +
                                             "/tests/reference/reference_training.py' '" + dir + "'",
                                         &status);
  const auto at = output.find(" " + name + ":");
  ASSERT_NE(at, std::string::npos) << "no line for " << name << " in:\n" << output;
  const std::string line = output.substr(output.rfind('\n', at) + 1, output.find('\n', at) - output.rfind('\n', at));
  EXPECT_EQ(line.rfind("PASS", 0), 0u) << line;
  EXPECT_EQ(status, 0) << output;
}

INSTANTIATE_TEST_SUITE_P(AllCases, ReferenceTraining, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<TrainingCase>& info) { return case_name(info.param); });

}  // namespace
}  // namespace ssmax
