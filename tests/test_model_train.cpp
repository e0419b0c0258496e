// GPT shapes and initialisation, optimizer groups, LR schedule, and end-to-end determinism.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "model/gpt.h"
#include "run/metrics.h"
#include "test_util.h"
#include "train/optimizer.h"
#include "train/schedule.h"
#include "train/trainer.h"

namespace ssmax {
namespace {

ModelConfig small_model(const std::string& normalizer = "softmax") {
  ModelConfig m;
  m.n_layer = 2;
  m.n_head = 2;
  m.n_embd = 16;
  m.block_size = 12;
  m.attention.normalizer = *normalizer_from_name(normalizer);
  return m;
}

TEST(GPT, LogitsShapeAndParameterNames) {
  torch::manual_seed(1);
  auto m = small_model("ssmax_bias");
  m.position = "rope";
  m.norm = "rmsnorm";
  m.mlp = "swiglu";
  m.tie_embeddings = false;
  GPT model(GPTOptions{m, 50});
  auto logits = model->forward(torch::randint(0, 50, {3, 12}, torch::kLong));
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{3, 12, 50}));
  auto params = model->named_parameters();
  for (const char* name : {"wte.weight", "lm_head.weight", "h.0.attn.c_attn.weight", "h.1.attn.normalizer.s",
                           "h.1.attn.normalizer.b", "h.0.mlp.c_gate.weight", "ln_f.weight"})
    EXPECT_TRUE(params.contains(name)) << name;
  EXPECT_FALSE(params.contains("wpe.weight"));
  EXPECT_EQ(params["h.0.mlp.c_fc.weight"].size(0), (8 * 16) / 3);
}

TEST(GPT, TiedEmbeddingsShareOneMatrix) {
  GPT model(GPTOptions{small_model(), 40});
  EXPECT_FALSE(model->named_parameters().contains("lm_head.weight"));
  const int64_t expected =
      40 * 16 + 12 * 16 /*wpe*/ + 16 /*ln_f*/ + 2 * (2 * 16 + 16 * 48 + 16 * 16 + 16 * 64 + 64 * 16);
  EXPECT_EQ(model->num_parameters(), expected);
}

// model.vocab_multiple pads the embedding and head (50 → 64 rows); the real rows start with the numbers of the
// unpadded model, logits and loss have only the tokenizer's classes, the padding gets no gradient, and what leaves
// the program (named_tensors_unpadded, the parameter count) has the true vocabulary.
TEST(GPT, VocabularyPaddingChangesNoNumber) {
  for (const bool tied : {true, false}) {
    SCOPED_TRACE(tied ? "tied" : "untied");
    auto plain_config = small_model("ssmax");
    plain_config.tie_embeddings = tied;
    plain_config.vocab_multiple = 1;
    auto padded_config = plain_config;
    padded_config.vocab_multiple = 64;
    torch::manual_seed(3);
    GPT plain(GPTOptions{plain_config, 50});
    torch::manual_seed(3);
    GPT padded(GPTOptions{padded_config, 50});
    ASSERT_EQ(padded->wte->weight.size(0), 64);
    EXPECT_TRUE(torch::equal(padded->wte->weight.narrow(0, 50, 14), torch::zeros({14, 16})));
    EXPECT_EQ(padded->num_parameters(), plain->num_parameters());
    EXPECT_EQ(padded->flops_per_token(12), plain->flops_per_token(12));
    const auto plain_tensors = plain->named_tensors_unpadded(), padded_tensors = padded->named_tensors_unpadded();
    ASSERT_EQ(plain_tensors.size(), padded_tensors.size());
    for (size_t i = 0; i < plain_tensors.size(); ++i) {
      EXPECT_EQ(plain_tensors[i].first, padded_tensors[i].first);
      EXPECT_TRUE(torch::equal(plain_tensors[i].second, padded_tensors[i].second)) << plain_tensors[i].first;
    }
    const auto idx = torch::randint(0, 50, {2, 12}, torch::kLong),
               targets = torch::randint(0, 50, {2, 12}, torch::kLong);
    const auto logits = padded->forward(idx);
    EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{2, 12, 50}));
    EXPECT_TRUE(torch::allclose(logits, plain->forward(idx), 0, 1e-6));
    auto plain_loss = plain->loss(idx, targets), padded_loss = padded->loss(idx, targets);
    EXPECT_NEAR(padded_loss.item<double>(), plain_loss.item<double>(), 1e-6);
    plain_loss.backward();
    padded_loss.backward();
    const auto& head = tied ? padded->wte->weight : padded->lm_head->weight;
    const auto& plain_head = tied ? plain->wte->weight : plain->lm_head->weight;
    EXPECT_TRUE(torch::equal(head.grad().narrow(0, 50, 14), torch::zeros({14, 16})));
    const double grad_diff = (head.grad().narrow(0, 0, 50) - plain_head.grad()).abs().max().item<double>();
    EXPECT_LT(grad_diff, 1e-6 * plain_head.grad().abs().max().item<double>() + 1e-9);
  }
}

TEST(GPT, Gpt2InitialisationScalesResidualProjections) {
  torch::manual_seed(0);
  auto m = small_model();
  m.n_embd = 256;
  m.n_head = 4;
  m.n_layer = 8;
  GPT model(GPTOptions{m, 512});
  auto params = model->named_parameters();
  EXPECT_NEAR(params["h.0.attn.c_attn.weight"].std().item<double>(), 0.02, 0.001);
  EXPECT_NEAR(params["h.0.attn.c_proj.weight"].std().item<double>(), 0.02 / std::sqrt(16.0), 0.0005);
  EXPECT_NEAR(params["h.0.mlp.c_proj.weight"].std().item<double>(), 0.02 / std::sqrt(16.0), 0.0005);
  EXPECT_TRUE(torch::equal(params["ln_f.weight"], torch::ones({256})));
}

TEST(GPT, LearnedPositionsRefuseLongerThanBlock) {
  GPT model(GPTOptions{small_model(), 30});
  EXPECT_THROW(model->forward(torch::zeros({1, 13}, torch::kLong)), std::exception);
}

TEST(GPT, RopeThetaChangesOnlyRopeModels) {
  torch::manual_seed(4);
  auto m = small_model("ssmax");
  m.position = "rope";
  GPT rope(GPTOptions{m, 30});
  auto idx = torch::randint(0, 30, {1, 12}, torch::kLong);
  auto before = rope->forward(idx);
  rope->set_rope_theta(500000.0);
  EXPECT_FALSE(torch::allclose(before, rope->forward(idx)));
  GPT learned(GPTOptions{small_model("ssmax"), 30});
  auto base = learned->forward(idx);
  learned->set_rope_theta(500000.0);
  EXPECT_TRUE(torch::equal(base, learned->forward(idx)));
}

TEST(Optimizer, EveryGroupGetsConfiguredOptionsAndDecayOnlyMatrices) {
  GPT model(GPTOptions{small_model("ssmax_bias"), 30});
  OptimConfig o;
  o.lr = 0.0123;
  o.beta1 = 0.8;
  o.beta2 = 0.9;
  o.eps = 1e-7;
  o.weight_decay = 0.25;
  auto optimizer = make_optimizer(*model, o);
  auto& groups = optimizer->param_groups();
  ASSERT_EQ(groups.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    auto& options = static_cast<torch::optim::AdamWOptions&>(groups[i].options());
    EXPECT_DOUBLE_EQ(options.lr(), 0.0123);
    EXPECT_DOUBLE_EQ(std::get<0>(options.betas()), 0.8);
    EXPECT_DOUBLE_EQ(std::get<1>(options.betas()), 0.9);
    EXPECT_DOUBLE_EQ(options.eps(), 1e-7);
    EXPECT_DOUBLE_EQ(options.weight_decay(), i == 0 ? 0.25 : 0.0);
  }
  for (const auto& p : groups[0].params()) EXPECT_GE(p.dim(), 2);
  for (const auto& p : groups[1].params()) EXPECT_LT(p.dim(), 2);
  auto s = model->named_parameters()["h.0.attn.normalizer.s"];
  bool s_in_no_decay = false;
  for (const auto& p : groups[1].params()) s_in_no_decay |= p.is_same(s);
  EXPECT_TRUE(s_in_no_decay);
  set_learning_rate(*optimizer, 0.5);
  for (auto& g : groups) EXPECT_DOUBLE_EQ(static_cast<torch::optim::AdamWOptions&>(g.options()).lr(), 0.5);
}

TEST(Optimizer, FrozenSIsLeftOut) {
  auto m = small_model("ssmax");
  m.attention.learn_s = false;
  GPT model(GPTOptions{m, 30});
  auto optimizer = make_optimizer(*model, OptimConfig{});
  size_t count = 0;
  for (auto& g : optimizer->param_groups()) count += g.params().size();
  EXPECT_EQ(count, model->parameters().size() - 2);  // one s per layer
}

TEST(Schedule, WarmupThenCosineLinearConstant) {
  OptimConfig o;
  o.lr = 1.0;
  o.min_lr = 0.1;
  o.warmup_steps = 10;
  EXPECT_DOUBLE_EQ(learning_rate(o, 0, 110), 0.1);
  EXPECT_DOUBLE_EQ(learning_rate(o, 9, 110), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate(o, 10, 110), 1.0);
  EXPECT_NEAR(learning_rate(o, 60, 110), 0.55, 1e-12);  // halfway through the cosine
  EXPECT_NEAR(learning_rate(o, 110, 110), 0.1, 1e-12);
  o.schedule = "linear";
  EXPECT_NEAR(learning_rate(o, 60, 110), 0.55, 1e-12);
  EXPECT_NEAR(learning_rate(o, 35, 110), 0.775, 1e-12);
  o.schedule = "constant";
  EXPECT_DOUBLE_EQ(learning_rate(o, 100, 110), 1.0);
}

std::vector<double> losses_of(const std::string& run_dir) {
  std::vector<double> losses;
  for (const auto& r : read_metrics(run_dir + "/metrics.jsonl").records) {
    if (r.train_loss) losses.push_back(*r.train_loss);
    if (r.val_loss) losses.push_back(*r.val_loss);
  }
  return losses;
}

TEST(Training, SameConfigAndSeedGiveIdenticalLosses) {
  const std::string dir = test_dir("determinism");
  Config config = tiny_training_config(dir, "ssmax_bias");
  config.out_dir = dir + "/run-a";
  TrainSummary a = train(config);
  config.out_dir = dir + "/run-b";
  TrainSummary b = train(config);
  auto la = losses_of(dir + "/run-a"), lb = losses_of(dir + "/run-b");
  ASSERT_GE(la.size(), 4u);
  EXPECT_EQ(la, lb);  // bit-identical, not merely close
  EXPECT_EQ(a.final_val_loss, b.final_val_loss);
  config.seed = 2;
  config.out_dir = dir + "/run-c";
  train(config);
  EXPECT_NE(losses_of(dir + "/run-c"), la);
}

TEST(Training, LossFallsAndSsmaxParametersAreRecorded) {
  const std::string dir = test_dir("learning");
  Config config = tiny_training_config(dir, "ssmax");
  config.train.max_steps = 150;
  config.train.eval_every = 50;
  config.train.checkpoint_every = 150;
  config.optim.lr = 1e-2;
  config.out_dir = dir + "/run";
  TrainSummary summary = train(config);
  auto records = read_metrics(dir + "/run/metrics.jsonl").records;
  ASSERT_FALSE(records.empty());
  EXPECT_EQ(records.front().parameter("s").size(), 1u);        // one layer
  EXPECT_EQ(records.front().parameter("s")[0].size(), 2u);     // two heads
  EXPECT_LT(summary.final_val_loss, summary.unigram_entropy);  // context helps on this text
  // Training records carry the model-FLOPs utilisation against the CPU's measured peak; evaluation records do not.
  for (const auto& r : records) {
    EXPECT_EQ(r.mfu.has_value(), r.train_loss.has_value()) << r.step;
    if (r.mfu) EXPECT_GT(*r.mfu, 0) << r.step;
  }
}

}  // namespace
}  // namespace ssmax
