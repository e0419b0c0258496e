// The recall task (data/recall_task.h): the layout of a sequence, the answers, mixed lengths, the streams, and the
// config's checks of its sizes.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "config/config.h"
#include "data/recall_task.h"
#include "model/gpt.h"
#include "test_util.h"

namespace ssmax {
namespace {

DataConfig recall_data(const std::string& mode, int keys, int values, int queries, int pairs = 0, int min_pairs = 0) {
  DataConfig data;
  data.task = "mqar";
  data.mqar.mode = mode;
  data.mqar.keys = keys;
  data.mqar.values = values;
  data.mqar.queries = queries;
  data.mqar.pairs = pairs;
  data.mqar.min_pairs = min_pairs;
  return data;
}

// Reads every sequence back as the task defines it: distinct keys, each query a key of the context, the target its
// value, the positions and rows pointing where they say — from the token ids alone.
void expect_well_formed(const RecallTask& task, const RecallBatch& batch) {
  const int64_t B = batch.inputs.size(0), L = batch.inputs.size(1), Q = task.queries();
  const int64_t width = task.mode() == "pair" ? 1 : 2;
  ASSERT_EQ(batch.targets.sizes(), batch.inputs.sizes());
  ASSERT_EQ(batch.answer_rows.numel(), B * Q);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t P = batch.pairs[b].item<int64_t>();
    ASSERT_GE(P, task.min_pairs());
    ASSERT_LE(width * P + Q, L);
    std::map<int64_t, int64_t> value_of;  // key → value, from the context's tokens
    for (int64_t i = 0; i < P; ++i) {
      int64_t key, value;
      if (width == 1) {
        const int64_t token = batch.inputs[b][i].item<int64_t>();
        ASSERT_LT(token, task.keys() * task.values());
        key = token / task.values(), value = token % task.values();
      } else {
        key = batch.inputs[b][2 * i].item<int64_t>();
        value = batch.inputs[b][2 * i + 1].item<int64_t>() - task.keys();
        ASSERT_LT(key, task.keys());
        ASSERT_GE(value, 0);
        ASSERT_LT(value, task.values());
      }
      ASSERT_EQ(task.pair_token(key, value), batch.inputs[b][width * i].item<int64_t>());
      ASSERT_TRUE(value_of.emplace(key, value).second) << "key " << key << " twice in row " << b;
    }
    std::set<int64_t> asked;
    int64_t answered = 0;
    for (int64_t t = 0; t < L; ++t) {
      const int64_t token = batch.inputs[b][t].item<int64_t>(), target = batch.targets[b][t].item<int64_t>();
      if (t < width * P) {
        EXPECT_EQ(target, -100);
      } else if (t < width * P + Q) {
        const int64_t key = width == 1 ? token - task.keys() * task.values() : token;
        ASSERT_TRUE(value_of.count(key)) << "query " << key << " not in the context of row " << b;
        EXPECT_TRUE(asked.insert(key).second);
        EXPECT_EQ(target, task.answer_token(value_of[key]));
        const int64_t q = t - width * P;
        EXPECT_EQ(batch.answer_rows[b * Q + q].item<int64_t>(), b * L + t);
        EXPECT_EQ(batch.answers[b * Q + q].item<int64_t>(), target);
        EXPECT_EQ(batch.query_positions[b][q].item<int64_t>(), t);
        const int64_t pair_at = batch.pair_positions[b][q].item<int64_t>();
        EXPECT_EQ(batch.inputs[b][pair_at].item<int64_t>(), task.pair_token(key, value_of[key]));
        ++answered;
      } else {
        EXPECT_EQ(token, task.pad_token());
        EXPECT_EQ(target, -100);
      }
      EXPECT_LT(token, task.vocab_size());
    }
    EXPECT_EQ(answered, Q);
  }
}

TEST(RecallTask, PairModeSequencesAnswerTheirQueries) {
  const RecallTask task(recall_data("pair", 40, 6, 5), 32);
  EXPECT_EQ(task.max_pairs(), 27);  // 32 tokens − 5 queries
  EXPECT_EQ(task.min_pairs(), 27);
  EXPECT_EQ(task.vocab_size(), 40 * 6 + 40 + 6 + 1);
  expect_well_formed(task, task.train_batch(3, 7, 0, 8));
  expect_well_formed(task, task.validation_batch(3, 2, 8));
  expect_well_formed(task, task.evaluation_batch(3, 45, 0, 4));  // 40 pairs: every key once
}

TEST(RecallTask, TokenModeSequencesAnswerTheirQueries) {
  const RecallTask task(recall_data("token", 64, 8, 4), 32);
  EXPECT_EQ(task.max_pairs(), 14);  // (32 − 4) / 2
  EXPECT_EQ(task.vocab_size(), 64 + 8 + 1);
  EXPECT_EQ(task.sequence_length(14), 32);
  expect_well_formed(task, task.train_batch(1, 0, 0, 8));
  expect_well_formed(task, task.evaluation_batch(1, 100, 3, 4));
}

TEST(RecallTask, MixedLengthsDrawEveryPairCountAndPad) {
  const RecallTask task(recall_data("pair", 64, 4, 3, 20, 3), 32);
  const RecallBatch batch = task.train_batch(5, 0, 0, 400);
  expect_well_formed(task, batch);
  const auto counts = batch.pairs;
  EXPECT_EQ(counts.min().item<int64_t>(), 3);
  EXPECT_EQ(counts.max().item<int64_t>(), 20);
  // About uniform: each of the 18 counts ~22 times in 400 rows.
  EXPECT_GT(counts.eq(11).sum().item<int64_t>(), 5);
}

TEST(RecallTask, BatchesArePureFunctionsOfTheirStream) {
  const RecallTask task(recall_data("pair", 64, 8, 4), 24);
  auto same = [](const RecallBatch& a, const RecallBatch& b) { return a.inputs.equal(b.inputs); };
  EXPECT_TRUE(same(task.train_batch(9, 4, 1, 6), task.train_batch(9, 4, 1, 6)));
  EXPECT_FALSE(same(task.train_batch(9, 4, 1, 6), task.train_batch(9, 4, 0, 6)));
  EXPECT_FALSE(same(task.train_batch(9, 4, 1, 6), task.train_batch(9, 5, 1, 6)));
  EXPECT_FALSE(same(task.train_batch(9, 4, 1, 6), task.train_batch(10, 4, 1, 6)));
  EXPECT_FALSE(same(task.train_batch(9, 0, 0, 6), task.validation_batch(9, 0, 6)));
  EXPECT_TRUE(same(task.evaluation_batch(9, 24, 2, 6), task.evaluation_batch(9, 24, 2, 6)));
  EXPECT_FALSE(same(task.evaluation_batch(9, 24, 2, 6), task.validation_batch(9, 2, 6)));
  // A batch's rows do not depend on how many rows it has: row b is row b.
  EXPECT_TRUE(task.train_batch(9, 4, 1, 3).inputs.equal(task.train_batch(9, 4, 1, 6).inputs.narrow(0, 0, 3)));
}

TEST(RecallTask, LengthsBeyondTheKeysAreRefusedNamingTheKey) {
  const RecallTask task(recall_data("pair", 30, 4, 2), 16);
  EXPECT_NO_THROW(task.evaluation_batch(1, 32, 0, 1));  // 30 pairs
  const std::string error = error_of([&] { task.evaluation_batch(1, 64, 0, 1); });
  EXPECT_NE(error.find("data.mqar.keys = 30"), std::string::npos) << error;
  EXPECT_NE(error.find("from 4 to 32 tokens"), std::string::npos) << error;
  EXPECT_NE(error_of([&] { task.evaluation_batch(1, 3, 0, 1); }).find("at least one per query"), std::string::npos);
}

TEST(RecallTask, ConfigRefusesSizesThatCannotBeMade) {
  auto error = [](const std::vector<std::string>& sets) {
    nlohmann::json root = {{"data", {{"task", "mqar"}}}, {"model", {{"block_size", 32}}}};
    return error_of([&] {
      for (const auto& set : sets) apply_override(root, set);
      config_from_json(root, "recall.json");
    });
  };
  EXPECT_EQ(error({}), "(no exception)");
  EXPECT_NE(error({"data.mqar.pairs=30"}).find("do not fit in model.block_size = 32"), std::string::npos);
  EXPECT_NE(error({"data.mqar.mode=token", "data.mqar.pairs=13", "data.mqar.queries=8"}).find("do not fit"),
            std::string::npos);
  EXPECT_NE(error({"data.mqar.keys=10"}).find("data.mqar.keys = 10 is fewer than the 24 pairs"), std::string::npos);
  EXPECT_NE(error({"data.mqar.min_pairs=25"}).find("data.mqar.min_pairs = 25 is above"), std::string::npos);
  EXPECT_NE(error({"data.mqar.min_pairs=4"}).find("min_pairs >= queries"), std::string::npos);
  EXPECT_NE(error({"data.mqar.queries=20"}).find("cannot answer data.mqar.queries = 20"), std::string::npos);
  EXPECT_NE(error({"model.attention.document_mask=true"}).find("document_mask"), std::string::npos);
  // The text task's sources are not read: an empty list is no error here.
  EXPECT_EQ(error({"data.sources=[]"}), "(no exception)");
}

// The loss on the answers is the cross-entropy of the logits at the answer rows, and no other position moves it.
TEST(RecallTask, LogitsAtTheAnswerRowsAreTheForwardsRows) {
  torch::manual_seed(0);
  const RecallTask task(recall_data("pair", 32, 4, 3), 16);
  ModelConfig model;
  model.n_layer = 1, model.n_head = 2, model.n_embd = 16, model.block_size = 16, model.position = "none";
  GPT gpt(GPTOptions{model, task.vocab_size()});
  gpt->eval();
  const RecallBatch batch = task.train_batch(1, 0, 0, 4);
  const auto all = gpt->forward(batch.inputs).reshape({-1, task.vocab_size()});
  const auto at = gpt->logits_at(batch.inputs, batch.answer_rows);
  EXPECT_TRUE(torch::allclose(at, all.index_select(0, batch.answer_rows), 1e-5, 1e-6));
  const auto masked = torch::nn::functional::cross_entropy(all, batch.targets.reshape({-1}));  // ignores −100
  EXPECT_NEAR(torch::nn::functional::cross_entropy(at, batch.answers).item<double>(), masked.item<double>(), 1e-5);
}

}  // namespace
}  // namespace ssmax
