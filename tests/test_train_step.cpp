// The one training step (train/train_step.h) that the training loop and `bench` both take.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <limits>

#include "test_util.h"
#include "train/session.h"
#include "train/train_step.h"

namespace ssmax {
namespace {

// Fixed random windows, micro-batch m of every step being rows m·rows … (m+1)·rows − 1 of one batch: with
// accumulation, a step sees exactly the rows one big micro-batch would. `poison` makes the loss NaN.
class FixedObjective : public TrainingObjective {
 public:
  FixedObjective(int64_t vocab, int64_t rows_per_micro, int64_t T, bool poison = false)
      : rows_(rows_per_micro), poison_(poison) {
    torch::manual_seed(7);
    tokens_ = torch::randint(vocab, {4, T + 1}, torch::kLong);
  }
  TrainBatch train_batch(int64_t, int micro, const torch::Device&) override {
    auto rows = tokens_.narrow(0, micro * rows_, rows_);
    return {rows.narrow(1, 0, rows.size(1) - 1), rows.narrow(1, 1, rows.size(1) - 1), {}, {}};
  }
  torch::Tensor train_loss(GPT& model, const TrainBatch& batch) override {
    auto loss = model->loss(batch.inputs, batch.targets);
    return poison_ ? loss * std::numeric_limits<double>::quiet_NaN() : loss;
  }
  double validation_loss(GPT&, int, const torch::Device&) override { return 0; }

 private:
  torch::Tensor tokens_;
  int64_t rows_;
  bool poison_;
};

std::unique_ptr<Session> session_with(int accumulation, bool poison = false) {
  Config config =
      tiny_training_config(test_dir("train-step-" + std::to_string(accumulation) + (poison ? "-nan" : "")), "ssmax");
  config.train.batch_size = 4 / accumulation;
  config.train.grad_accum_steps = accumulation;
  auto session = make_model_session(config, "", 300);
  session->objective = std::make_unique<FixedObjective>(300, config.train.batch_size, config.model.block_size, poison);
  return session;
}

std::vector<torch::Tensor> weights(Session& s) {
  std::vector<torch::Tensor> out;
  for (const auto& p : s.model->parameters()) out.push_back(p.detach().clone());
  return out;
}

TEST(TrainStep, AccumulatedMicroBatchesAreOneBigBatch) {
  auto whole = session_with(1), split = session_with(4);
  const StepResult a = TrainStep(*whole).run(0, false), b = TrainStep(*split).run(0, false);
  EXPECT_TRUE(a.updated && b.updated);
  EXPECT_EQ(a.tokens, 4 * 32);
  EXPECT_EQ(b.tokens, a.tokens);
  EXPECT_NEAR(a.loss, b.loss, 1e-6);  // the mean over the micro-batches, not their sum
  EXPECT_NEAR(a.grad_norm, b.grad_norm, 1e-5 * a.grad_norm);
  // The gradients AdamW was given (weights after one AdamW step would magnify rounding in near-zero gradients).
  const auto ga = whole->model->parameters(), gb = split->model->parameters();
  for (size_t i = 0; i < ga.size(); ++i)
    EXPECT_TRUE(torch::allclose(ga[i].grad(), gb[i].grad(), 1e-4, 1e-7)) << "gradient of parameter " << i;
}

TEST(TrainStep, NonFiniteLossLeavesTheWeightsAlone) {
  auto s = session_with(2, /*poison=*/true);
  const auto before = weights(*s);
  const StepResult result = TrainStep(*s).run(0, false);
  EXPECT_FALSE(result.updated);
  EXPECT_TRUE(std::isnan(result.loss));
  const auto after = weights(*s);
  for (size_t i = 0; i < before.size(); ++i) EXPECT_TRUE(torch::equal(before[i], after[i])) << "parameter " << i;
}

TEST(TrainStep, ThePhaseClockAccountsForTheWholeStep) {
  auto s = session_with(2);
  TrainStep step(*s);
  StepPhaseClock clock(s->device);
  const auto before = std::chrono::steady_clock::now();
  clock.start();
  step.run(0, false, {}, &clock);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - before).count();
  // Every phase was lapped (a phase the step forgot to lap stays exactly 0), and the laps lie inside the call.
  for (auto phase : {StepPhase::Data, StepPhase::Forward, StepPhase::Backward, StepPhase::Update})
    EXPECT_GT(clock.seconds(phase), 0) << static_cast<int>(phase);
  EXPECT_LE(clock.total(), wall);
  // The caller's values come back summed over the processes: one process, as given.
  EXPECT_EQ(step.run(1, false, {2.0, 3.0}).summed, (std::vector<double>{2.0, 3.0}));
}

}  // namespace
}  // namespace ssmax
