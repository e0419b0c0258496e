// The recall task's objective (data.task = "mqar"): cross-entropy on the answers, batches generated from the seed.
#include <spdlog/spdlog.h>

#include <cmath>

#include "data/recall_task.h"
#include "train/session.h"

namespace ssmax {
namespace {

struct RecallScores {
  torch::Tensor loss;     // mean cross-entropy over the answers
  torch::Tensor correct;  // answers whose largest logit is the right one
};

RecallScores score(GPT& model, const TrainBatch& batch) {
  const auto logits = model->logits_at(batch.inputs, batch.answer_rows);
  const auto answers = batch.targets.reshape({-1}).index_select(0, batch.answer_rows);
  return {torch::nn::functional::cross_entropy(logits.to(torch::kFloat), answers), logits.argmax(-1).eq(answers).sum()};
}

class RecallObjective : public TrainingObjective {
 public:
  explicit RecallObjective(const Config& config)
      : task_(config.data, config.model.block_size),
        seed_(config.seed),
        batch_size_(config.train.batch_size),
        block_size_(config.model.block_size) {}

  TrainBatch train_batch(int64_t step, int micro, const torch::Device& device) override {
    return to_device(task_.train_batch(seed_, step, micro, batch_size_), device);
  }

  torch::Tensor train_loss(GPT& model, const TrainBatch& batch) override { return score(model, batch).loss; }

  double validation_loss(GPT& model, int batches, const torch::Device& device) override {
    double loss = 0, correct = 0;
    for (int i = 0; i < batches; ++i) {
      const RecallScores scores = score(model, to_device(task_.validation_batch(seed_, i, batch_size_), device));
      loss += scores.loss.item<double>();
      correct += scores.correct.item<double>();
    }
    spdlog::info("val recall accuracy {:.3f} ({} answers; chance {:.3f})",
                 correct / (static_cast<double>(batches) * batch_size_ * task_.queries()),
                 batches * batch_size_ * task_.queries(), 1.0 / static_cast<double>(task_.values()));
    return loss / batches;
  }

  double validation_loss_sum(GPT& model, int batches, int rank, int world, const torch::Device& device) override {
    double total = 0;
    for (int i = rank; i < batches; i += world)
      total += score(model, to_device(task_.validation_batch(seed_, i, batch_size_), device)).loss.item<double>();
    return total;
  }

  std::string loss_name() const override { return "answer loss"; }
  double head_share() const override {
    return static_cast<double>(task_.queries()) / static_cast<double>(block_size_);  // the queries of a block
  }
  std::string baseline_note() const override {
    return " (chance: ln " + std::to_string(task_.values()) + " = " +
           std::to_string(std::log(static_cast<double>(task_.values()))).substr(0, 5) + ")";
  }

 private:
  static TrainBatch to_device(const RecallBatch& batch, const torch::Device& device) {
    TrainBatch out{batch.inputs.to(device), batch.targets.to(device), {}, {}};
    out.answer_rows = batch.answer_rows.to(device);
    return out;
  }

  RecallTask task_;
  uint64_t seed_;
  int64_t batch_size_, block_size_;
};

}  // namespace

std::unique_ptr<TrainingObjective> recall_objective(const Config& config) {
  return std::make_unique<RecallObjective>(config);
}

}  // namespace ssmax
