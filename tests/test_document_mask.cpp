// Document masking (model/attention.h, DocumentLayout): a window packed with several documents gives each document
// exactly what it gives alone — logits and loss — for the three normalizers, learned positions and RoPE, the fused
// CPU kernels (float32) and the composite path (float64); and the mask is all it changes.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>

#include "data/prepare.h"
#include "model/gpt.h"
#include "test_util.h"
#include "train/session.h"
#include "util/errors.h"

namespace ssmax {
namespace {

struct Shape {
  const char* normalizer;
  const char* position;
  int n_kv_head = 0;
};

GPT masked_model(const Shape& shape, bool document_mask = true, uint64_t seed = 11) {
  ModelConfig m;
  m.n_layer = 2;
  m.n_head = 4;
  m.n_kv_head = shape.n_kv_head;
  m.n_embd = 32;
  m.block_size = 16;
  m.position = shape.position;
  m.rope_theta = 100.0;  // small θ: a wrong position turns the keys visibly
  m.norm = "rmsnorm";
  m.mlp = "swiglu";
  m.tie_embeddings = false;
  m.attention.normalizer = *normalizer_from_name(shape.normalizer);
  m.attention.s_init = 0.8;
  m.attention.b_init = 0.3;
  m.attention.document_mask = document_mask;
  torch::manual_seed(seed);
  GPT model(GPTOptions{m, 41});
  model->eval();
  return model;
}

// Positions that restart at each document start: lengths {5, 7, 4} → 0…4, 0…6, 0…3.
torch::Tensor positions_of(const std::vector<int64_t>& lengths) {
  std::vector<torch::Tensor> parts;
  for (int64_t n : lengths) parts.push_back(torch::arange(n, torch::kLong));
  return torch::cat(parts).view({1, -1});
}

const std::vector<Shape> kShapes = {{"softmax", "learned"}, {"ssmax", "learned"},     {"ssmax_bias", "learned"},
                                    {"softmax", "rope"},    {"ssmax", "rope"},        {"ssmax_bias", "rope"},
                                    {"ssmax", "rope", 2},   {"ssmax_bias", "rope", 1}};

std::string name_of(const Shape& s) {
  return std::string(s.normalizer) + "-" + s.position + (s.n_kv_head ? "-gqa" + std::to_string(s.n_kv_head) : "");
}

TEST(DocumentMask, EachDocumentOfAPackedWindowGivesTheLogitsItGivesAlone) {
  torch::NoGradGuard no_grad;
  const std::vector<int64_t> lengths = {5, 7, 4};
  for (const auto dtype : {torch::kFloat32, torch::kFloat64}) {
    for (const Shape& shape : kShapes) {
      SCOPED_TRACE(name_of(shape) + (dtype == torch::kFloat32 ? " float32" : " float64"));
      GPT model = masked_model(shape);
      model->to(dtype);
      torch::manual_seed(3);
      auto idx = torch::randint(41, {1, 16}, torch::kLong);
      auto packed = model->forward(idx, nullptr, nullptr, positions_of(lengths));
      const double tolerance = dtype == torch::kFloat32 ? 2e-5 : 1e-12;
      int64_t start = 0;
      for (int64_t n : lengths) {
        auto alone = model->forward(idx.narrow(1, start, n));
        auto part = packed.narrow(1, start, n);
        EXPECT_LT((part - alone).abs().max().item<double>(), tolerance) << "document at " << start;
        start += n;
      }
    }
  }
}

TEST(DocumentMask, LossOfAPackedBatchIsTheTokenWeightedLossOfItsDocuments) {
  // Two rows with different layouts; the second holds one document (the plain path), mixed in one batch.
  for (const Shape& shape : kShapes) {
    SCOPED_TRACE(name_of(shape));
    GPT model = masked_model(shape);
    torch::manual_seed(5);
    auto idx = torch::randint(41, {2, 12}, torch::kLong);
    auto targets = torch::randint(41, {2, 12}, torch::kLong);
    auto positions = torch::cat({positions_of({3, 9}), positions_of({12})});
    auto packed = model->loss(idx, targets, positions);
    double sum = 0;
    for (auto [row, start, n] : std::vector<std::array<int64_t, 3>>{{0, 0, 3}, {0, 3, 9}, {1, 0, 12}})
      sum += model->loss(idx[row].narrow(0, start, n).view({1, n}), targets[row].narrow(0, start, n).view({1, n}))
                 .item<double>() *
             n;
    EXPECT_NEAR(packed.item<double>(), sum / 24, 2e-6);
  }
}

TEST(DocumentMask, GradientsFlowToSAndBThroughTheMaskedPath) {
  // The fused kernel's per-row factors have their own backward: compare it with the float64 composite path.
  for (const Shape& shape : {Shape{"ssmax_bias", "rope"}, Shape{"ssmax", "learned"}}) {
    std::vector<torch::Tensor> grads[2];
    for (int i = 0; i < 2; ++i) {
      GPT model = masked_model(shape);
      model->train();
      if (i == 1) model->to(torch::kFloat64);
      torch::manual_seed(9);
      auto idx = torch::randint(41, {2, 16}, torch::kLong);
      auto positions = torch::cat({positions_of({6, 10}), positions_of({1, 2, 13})});
      model->loss(idx, idx.roll(-1, 1), positions).backward();
      for (auto& p : model->named_parameters())
        if (p.key().find("normalizer") != std::string::npos) grads[i].push_back(p.value().grad().to(torch::kFloat64));
    }
    ASSERT_FALSE(grads[0].empty());
    for (size_t k = 0; k < grads[0].size(); ++k) {
      EXPECT_TRUE(torch::allclose(grads[0][k], grads[1][k], 1e-4, 1e-5)) << grads[0][k] << grads[1][k];
      EXPECT_GT(grads[0][k].abs().sum().item<double>(), 0);
    }
  }
}

TEST(DocumentMask, WithoutTheKeyPositionsChangeNothing) {
  torch::NoGradGuard no_grad;
  for (const Shape& shape : kShapes) {
    GPT model = masked_model(shape, /*document_mask=*/false);
    auto idx = torch::randint(41, {1, 16}, torch::kLong);
    EXPECT_TRUE(torch::equal(model->forward(idx, nullptr, nullptr, positions_of({5, 7, 4})), model->forward(idx)))
        << name_of(shape);
  }
}

TEST(DocumentMask, OneDocumentPerRowIsThePlainCausalModelBitForBit) {
  // The common case (a window inside one long document) takes the unmasked kernels: the same numbers, no mask.
  torch::NoGradGuard no_grad;
  for (const Shape& shape : kShapes) {
    GPT model = masked_model(shape);
    auto idx = torch::randint(41, {2, 16}, torch::kLong);
    auto positions = torch::arange(16, torch::kLong).repeat({2, 1});
    EXPECT_TRUE(torch::equal(model->forward(idx, nullptr, nullptr, positions), model->forward(idx))) << name_of(shape);
    EXPECT_TRUE(DocumentLayout::from_positions(positions).empty());
  }
}

TEST(DocumentMask, AttentionWeightsStayInsideTheDocument) {
  // The explicit path (what `attention` reads) agrees with the fused one and puts no weight on other documents.
  torch::NoGradGuard no_grad;
  GPT model = masked_model({"ssmax", "rope"});
  auto idx = torch::randint(41, {1, 12}, torch::kLong);
  auto positions = positions_of({4, 8});
  std::vector<torch::Tensor> weights;
  auto with_weights = model->forward(idx, nullptr, &weights, positions);
  EXPECT_LT((with_weights - model->forward(idx, nullptr, nullptr, positions)).abs().max().item<double>(), 1e-5);
  ASSERT_EQ(weights.size(), 2u);
  for (const auto& w : weights) {
    EXPECT_EQ(w.sizes(), (std::vector<int64_t>{1, 4, 12, 12}));
    EXPECT_EQ(w.narrow(2, 4, 8).narrow(3, 0, 4).abs().max().item<double>(), 0.0);  // 2nd document → 1st
    EXPECT_LT((w.sum(-1) - 1).abs().max().item<double>(), 1e-5);
  }
}

TEST(DocumentMask, TheMaskIsBlockDiagonalAndCausal) {
  auto layout = DocumentLayout::from_positions(positions_of({2, 3}));
  ASSERT_FALSE(layout.empty());
  auto expected = torch::tensor({1, 0, 0, 0, 0,  //
                                 1, 1, 0, 0, 0,  //
                                 0, 0, 1, 0, 0,  //
                                 0, 0, 1, 1, 0,  //
                                 0, 0, 1, 1, 1},
                                torch::kBool)
                      .view({1, 1, 5, 5});
  EXPECT_TRUE(torch::equal(layout.visible, expected)) << layout.visible;
}

TEST(DocumentMask, SSMaxCountsKeysWithinTheDocument) {
  // n = position within the document + 1: the factor of a document's first query is s·ln 1 (+ b) = b.
  NormalizerOptions options;
  options.kind = Normalizer::SSMaxBias;
  options.n_head = 2;
  options.s_init = 0.7;
  options.b_init = 0.2;
  AttentionNormalizer normalizer(options);
  auto positions = positions_of({3, 2});
  auto scale = normalizer->row_scale_at(positions, torch::TensorOptions().dtype(torch::kFloat64));
  ASSERT_EQ(scale.sizes(), (std::vector<int64_t>{1, 2, 5, 1}));
  const double expected[5] = {0.2, 0.7 * std::log(2.0) + 0.2, 0.7 * std::log(3.0) + 0.2, 0.2,
                              0.7 * std::log(2.0) + 0.2};
  for (int t = 0; t < 5; ++t)
    for (int h = 0; h < 2; ++h) EXPECT_NEAR(scale[0][h][t][0].item<double>(), expected[t], 1e-7) << t;
}

TEST(DocumentMask, CudaPackedWindowGivesEachDocumentItsLogitsAlone) {
  // The same equivalence through CUDA's kernels (SDPA with the mask; the composite q/k/v split), float32, and the
  // packed logits against the CPU's. Skipped without a GPU; scripts/gpu_check.sh runs it.
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  torch::NoGradGuard no_grad;
  const std::vector<int64_t> lengths = {5, 7, 4};
  for (const Shape& shape : kShapes) {
    SCOPED_TRACE(name_of(shape));
    GPT model = masked_model(shape);
    auto idx = torch::randint(41, {1, 16}, torch::kLong);
    auto on_cpu = model->forward(idx, nullptr, nullptr, positions_of(lengths));
    model->to(torch::kCUDA);
    auto packed = model->forward(idx.cuda(), nullptr, nullptr, positions_of(lengths).cuda()).cpu();
    EXPECT_LT((packed - on_cpu).abs().max().item<double>(), 1e-4);
    int64_t start = 0;
    for (int64_t n : lengths) {
      auto alone = model->forward(idx.narrow(1, start, n).cuda()).cpu();
      EXPECT_LT((packed.narrow(1, start, n) - alone).abs().max().item<double>(), 1e-4) << "document at " << start;
      start += n;
    }
  }
}

TEST(DocumentMask, TheObjectiveFeedsPositionsAndRefusesADatasetWithoutBoundaries) {
  const std::string dir = test_dir("document-mask-objective");
  Config config = tiny_training_config(dir, "ssmax");
  config.model.attention.document_mask = true;
  config.data.text_documents = "blank_line";  // paragraphs of ~3 lines: every 32-token window holds boundaries
  {
    std::ofstream out(dir + "/paragraphs.txt");
    for (int i = 0; i < 900; ++i)
      out << "the king went up to the city on day " << i % 7 << ".\n" << (i % 3 ? "" : "\n");
  }
  config.data.sources = {dir + "/paragraphs.txt"};
  PreparedDataset dataset = prepare_dataset(config.data, 1);
  ASSERT_FALSE(dataset.train_documents.empty());
  torch::manual_seed(1);
  GPT model(GPTOptions{config.model, dataset.vocab_size});
  auto objective = language_model_objective(dataset, config);
  const TrainBatch batch = objective->train_batch(0, 0, torch::kCPU);
  // The positions the objective feeds are the documents' own: 0 right after an end-of-document token (or at a
  // document start the window opens on), one more than the token before otherwise.
  ASSERT_TRUE(batch.positions.defined());
  ASSERT_GE(dataset.document_end_token, 0);
  int64_t restarts = 0;
  for (int64_t b = 0; b < batch.inputs.size(0); ++b)
    for (int64_t t = 1; t < batch.inputs.size(1); ++t) {
      const bool after_end = batch.inputs[b][t - 1].item<int64_t>() == dataset.document_end_token;
      const int64_t expected = after_end ? 0 : batch.positions[b][t - 1].item<int64_t>() + 1;
      ASSERT_EQ(batch.positions[b][t].item<int64_t>(), expected) << "row " << b << ", token " << t;
      restarts += after_end;
    }
  EXPECT_GT(restarts, 0);
  // And the loss is the model's on those positions: the masked forward, not the plain one.
  const double masked = objective->train_loss(model, batch).item<double>();
  EXPECT_EQ(masked, model->loss(batch.inputs, batch.targets, batch.positions).item<double>());
  EXPECT_NE(masked, model->loss(batch.inputs, batch.targets).item<double>());
  EXPECT_TRUE(std::isfinite(objective->validation_loss(model, 2, torch::kCPU)));

  // A dataset from before format 4 knows no boundaries: refused, never guessed.
  config.model.attention.document_mask = true;
  dataset.train_documents.clear();
  dataset.val_documents.clear();
  const std::string message = error_of([&] { language_model_objective(dataset, config); });
  EXPECT_NE(message.find("model.attention.document_mask"), std::string::npos) << message;
  EXPECT_NE(message.find("prepare"), std::string::npos) << message;
  EXPECT_THROW(language_model_objective(dataset, config), UsageError);
}

}  // namespace
}  // namespace ssmax
