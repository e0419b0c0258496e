// `finetune --task needle|repeat`: teach retrieval with the loss on the answer tokens (plus, weighted, the
// language-model loss on the prompt, which keeps the model a language model), in a run directory of its
// own. `repeat` (copy a window of text seen earlier) grows the induction heads that needle retrieval needs.
// Examples are a pure function of (seed, step, index), and checkpoints carry the optimizer and RNG, so
// rerunning the same command continues where an interrupted one stopped.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "data/needle_prompt.h"
#include "run/run_paths.h"
#include "train/finetune.h"
#include "train/finetune_batches.h"
#include "train/optimizer.h"
#include "train/run_dir.h"
#include "train/session.h"
#include "util/arg_checks.h"
#include "util/errors.h"
#include "util/files.h"
#include "util/interrupt.h"
#include "util/logging.h"

namespace ssmax {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

struct FinetuneLosses {
  torch::Tensor answer;  // mean cross-entropy over the answer tokens
  torch::Tensor prompt;  // mean next-token cross-entropy over the prompt (its language-model loss)
};

FinetuneLosses finetune_losses(GPT& model, const TrainBatch& batch) {
  auto logits = model->forward(batch.inputs);
  logits = logits.reshape({-1, logits.size(-1)});
  auto loss_on = [&](const torch::Tensor& targets) {
    return torch::nn::functional::cross_entropy(logits, targets.reshape({-1}));
  };
  return {loss_on(batch.targets), loss_on(batch.extra_targets)};
}

// The answer tokens are the targets; the prompt's next tokens the extra targets.
TrainBatch to_device(const FinetuneBatch& batch, const torch::Device& device) {
  return {batch.inputs.to(device), batch.answer_targets.to(device), {}, batch.prompt_targets.to(device)};
}

// Text from the training split for training, from the validation split for the fixed validation set
// (stream 1), so that `needle`, which cuts its haystacks from the validation split, never sees a training prompt.
class FinetuneObjective : public TrainingObjective {
 public:
  FinetuneObjective(const PreparedDataset& dataset, const Config& config, std::string task,
                    std::vector<int64_t> lengths, double lm_weight)
      : tokenizer_(Tokenizer::load(dataset.tokenizer_model)),
        train_text_(TokenSource::from_shards(dataset.train_shards)),
        val_text_(TokenSource::from_shards(dataset.val_shards)),
        task_(std::move(task)),
        lengths_(std::move(lengths)),
        batch_size_(config.train.batch_size),
        accumulation_(config.train.grad_accum_steps),
        seed_(config.seed),
        lm_weight_(lm_weight) {}

  TrainBatch train_batch(int64_t step, int micro, const torch::Device& device) override {
    return to_device(make_batch(train_text_, step * accumulation_ + micro, 0), device);
  }

  torch::Tensor train_loss(GPT& model, const TrainBatch& batch) override {
    const FinetuneLosses losses = finetune_losses(model, batch);
    // lm_weight 0 skips the term: its value would not change the result, only cost a backward pass.
    return lm_weight_ > 0 ? losses.answer + lm_weight_ * losses.prompt : losses.answer;
  }

  // The answer loss (what the task is judged by); the breakdown by length and the prompt's language-model
  // loss go to the log, since a mean over lengths hides a length that stays at chance.
  double validation_loss(GPT& model, int batches, const torch::Device& device) override {
    std::map<int64_t, std::pair<double, int>> by_length;
    double answer_total = 0, prompt_total = 0;
    for (int i = 0; i < batches; ++i) {
      const FinetuneBatch batch = make_batch(val_text_, i, 1);
      const FinetuneLosses losses = finetune_losses(model, to_device(batch, device));
      const double answer = losses.answer.item<double>();
      answer_total += answer;
      prompt_total += losses.prompt.item<double>();
      by_length[batch.length].first += answer;
      by_length[batch.length].second += 1;
    }
    std::string lengths;
    for (const auto& [length, sum] : by_length)
      lengths += fmt::format("{}{}: {:.3f}", lengths.empty() ? "" : ", ", length, sum.first / sum.second);
    spdlog::info("val {} by length {{{}}}, prompt LM loss {:.3f}", loss_name(), lengths, prompt_total / batches);
    return answer_total / batches;
  }

  std::string loss_name() const override { return task_ == "needle" ? "answer loss" : "copy loss"; }
  std::string train_loss_name() const override {
    return lm_weight_ > 0 ? fmt::format("{} + {}·prompt LM loss", loss_name(), lm_weight_) : loss_name();
  }

  // Throws UsageError for a length too short for the task.
  void check_lengths() const {
    for (int64_t length : lengths_) {
      if (task_ == "needle") build_needle_prompt(tokenizer_, val_text_, length, 0.5, seed_);
      if (task_ == "repeat")
        repeat_training_batch(val_text_, {length}, 1, seed_, 0, 1, random_number_tokens(tokenizer_));
    }
  }

 private:
  FinetuneBatch make_batch(const TokenSource& text, int64_t step, uint64_t stream) const {
    if (task_ == "needle") return needle_training_batch(tokenizer_, text, lengths_, batch_size_, seed_, step, stream);
    return repeat_training_batch(text, lengths_, batch_size_, seed_, step, stream, random_number_tokens(tokenizer_));
  }

  Tokenizer tokenizer_;
  TokenSource train_text_, val_text_;
  std::string task_;
  std::vector<int64_t> lengths_;
  int64_t batch_size_, accumulation_;
  uint64_t seed_;
  double lm_weight_;
};

// What a finetune changes in the source run's config, before the user's --set: a short run at a lower rate.
const std::vector<std::string>& finetune_defaults() {
  static const std::vector<std::string> defaults = {
      "train.max_steps=200",  "train.log_every=10",         "train.eval_every=50",
      "train.eval_batches=4", "train.checkpoint_every=100", "train.grad_accum_steps=1",
      "optim.lr=3e-4",        "optim.min_lr=3e-5",          "optim.warmup_steps=20"};
  return defaults;
}

}  // namespace

void check_arguments(const FinetuneArgs& args) {
  if (args.task != "needle" && args.task != "repeat")
    throw UsageError("--task " + args.task + ": allowed are needle and repeat");
  if (args.lengths.empty()) throw UsageError("--lengths: give at least one length");
  for (int64_t length : args.lengths)
    if (length < 1) throw UsageError("--lengths " + std::to_string(length) + ": must be a positive length");
  check_number("--lm-weight", args.lm_weight, 0, 1e6);
}

int run_finetune(const FinetuneArgs& args) {
  check_arguments(args);
  const CheckpointInfo source = open_checkpoint(args.checkpoint);
  const CheckpointMeta& source_meta = source.meta;
  refuse_without_text(source_meta, source.path, "finetune");

  // The source run's config with finetuning defaults, then the user's --set.
  json merged = source_meta.config;
  merged["out_dir"] = fs::path(source.run_dir).lexically_normal().string() + "-ft-" + args.task;
  for (const auto& assignment : finetune_defaults()) apply_override(merged, assignment);
  for (const auto& assignment : args.overrides) apply_override(merged, assignment);
  const Config config = config_from_json(merged, "finetune " + args.checkpoint);
  if (config_to_json(config)["model"] != source_meta.config["model"])
    throw UsageError("finetune: model.* keys cannot change (the weights come from " + source.path + ")");
  const int64_t longest = *std::max_element(args.lengths.begin(), args.lengths.end());
  if (config.model.position == "learned" && longest + 10 > config.model.block_size)
    throw UsageError("--lengths " + std::to_string(longest) +
                     ": learned positions need prompt + answer (~10 tokens) <= "
                     "model.block_size = " +
                     std::to_string(config.model.block_size));

  // Everything that can refuse the command does so before the run directory is made.
  const PreparedDataset dataset = load_prepared_dataset(source_meta.dataset_dir);
  auto objective = std::make_unique<FinetuneObjective>(dataset, config, args.task, args.lengths, args.lm_weight);
  objective->check_lengths();

  const RunDirState state = open_run_dir(config);
  const std::string run_dir = config.out_dir;
  const json task = {{"task", args.task},
                     {"source", fs::absolute(source.path).lexically_normal().string()},
                     {"lengths", args.lengths},
                     {"lm_weight", args.lm_weight}};
  const fs::path task_file = RunPaths(run_dir).finetune_task();
  if (state != RunDirState::Fresh && fs::exists(task_file) && json::parse(read_file(task_file.string())) != task)
    throw UsageError(run_dir + " holds a finetune of another source or task (see " + task_file.string() +
                     "); pick another out_dir (--set out_dir=DIR)");
  if (state == RunDirState::SameRunComplete) {
    spdlog::info("{} already holds this finetune, complete at step {}", run_dir, config.train.max_steps);
    return 0;
  }
  write_file_atomic(task_file.string(), task.dump(2) + "\n");

  auto session = make_model_session(config, run_dir, source_meta.vocab_size);
  if (state == RunDirState::SameRunUnfinished) {
    const std::string latest = find_resume_checkpoint(run_dir);
    reopen_run_logs(run_dir, read_checkpoint_meta(latest));
    session->meta = load_checkpoint(latest, session->model, session->optimizer.get());
    apply_optimizer_config(*session->optimizer, config.optim);
    spdlog::info("finetune: resumed {} at step {}/{}", run_dir, session->meta.step, config.train.max_steps);
  } else {
    log_to_file(RunPaths(run_dir).log());
    load_checkpoint(source.path, session->model, nullptr);
    session->meta.dataset_dir = source_meta.dataset_dir;
    session->meta.dataset_fingerprint = source_meta.dataset_fingerprint;
    spdlog::info("finetune --task {}: {} → {}, {} steps of {} sequences, lengths {}, lm weight {}", args.task,
                 source.path, run_dir, config.train.max_steps, config.train.batch_size, json(args.lengths).dump(),
                 args.lm_weight);
  }
  session->meta.config = config_to_json(config);
  session->model->to(session->device);
  session->dataset = dataset;
  session->objective = std::move(objective);
  session->continue_command = "the same finetune command again";

  TrainOptions options;
  options.stop_at = args.stop_at;
  const TrainSummary summary = run_training_loop(*session, options);
  if (summary.interrupted) return InterruptGuard::requested() ? InterruptGuard::exit_code() : 0;
  if (args.task == "needle")
    spdlog::info("finetune done: {} steps; evaluate with: ssmax-gpt needle {}", summary.steps, run_dir);
  else
    spdlog::info("finetune done: {} steps; continue with: ssmax-gpt finetune {} --task needle", summary.steps, run_dir);
  return 0;
}

}  // namespace ssmax
