// `finetune --task needle`: teach retrieval with loss on the answer tokens only, in a run directory of its
// own. Examples are a pure function of (seed, step, index), and checkpoints carry the optimizer and RNG,
// so rerunning the same command continues where an interrupted one stopped.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "eval/eval_commands.h"
#include "eval/eval_model.h"
#include "eval/finetune.h"
#include "eval/needle_prompt.h"
#include "train/optimizer.h"
#include "train/run_dir.h"
#include "train/session.h"
#include "util/errors.h"
#include "util/files.h"
#include "util/interrupt.h"
#include "util/logging.h"

namespace ssmax {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

uint64_t mix(uint64_t x) {  // splitmix64
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

torch::Tensor answer_loss(GPT& model, const std::pair<torch::Tensor, torch::Tensor>& batch, const torch::Device& device) {
  auto logits = model->forward(batch.first.to(device));
  return torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}), batch.second.to(device).reshape({-1}));
}

// Haystacks from the training split for training, from the validation split for the fixed validation set
// (stream 1), so that `needle`, which cuts its haystacks from the validation split, never sees a training prompt.
class NeedleObjective : public TrainingObjective {
 public:
  NeedleObjective(const PreparedDataset& dataset, const Config& config, std::vector<int64_t> lengths)
      : tokenizer_(Tokenizer::load(dataset.tokenizer_model)),
        train_text_(TokenSource::from_shard(dataset.train_shard)),
        val_text_(TokenSource::from_shard(dataset.val_shard)),
        lengths_(std::move(lengths)),
        batch_size_(config.train.batch_size),
        accumulation_(config.train.grad_accum_steps),
        seed_(config.seed) {}

  std::pair<torch::Tensor, int64_t> train_loss(GPT& model, int64_t step, int micro,
                                               const torch::Device& device) override {
    const auto batch = needle_training_batch(tokenizer_, train_text_, lengths_, batch_size_, seed_,
                                             step * accumulation_ + micro, 0);
    return {answer_loss(model, batch, device), batch.first.numel()};
  }

  double validation_loss(GPT& model, int batches, const torch::Device& device) override {
    double total = 0;
    for (int i = 0; i < batches; ++i)
      total += answer_loss(model, needle_training_batch(tokenizer_, val_text_, lengths_, batch_size_, seed_, i, 1), device)
                   .item<double>();
    return total / batches;
  }

  std::string loss_name() const override { return "answer loss"; }

  // Throws UsageError for a length too short to hold the needle and the question.
  void check_lengths() const {
    for (int64_t length : lengths_) build_needle_prompt(tokenizer_, val_text_, length, 0.5, seed_);
  }

 private:
  Tokenizer tokenizer_;
  TokenSource train_text_, val_text_;
  std::vector<int64_t> lengths_;
  int64_t batch_size_, accumulation_;
  uint64_t seed_;
};

}  // namespace

std::pair<torch::Tensor, torch::Tensor> needle_training_batch(const Tokenizer& tokenizer, const TokenSource& haystack,
                                                              const std::vector<int64_t>& lengths, int64_t batch_size,
                                                              uint64_t seed, int64_t step, uint64_t stream) {
  const int64_t length = lengths[static_cast<size_t>(step) % lengths.size()];
  std::vector<std::vector<int64_t>> rows;
  std::vector<size_t> prompt_sizes;
  size_t longest = 0;
  for (int64_t b = 0; b < batch_size; ++b) {
    const uint64_t key = mix(mix(mix(seed ^ stream) ^ static_cast<uint64_t>(step)) ^ static_cast<uint64_t>(b));
    const double depth = static_cast<double>(key % 1001) / 1000.0;
    const NeedlePrompt p = build_needle_prompt(tokenizer, haystack, length, depth, key);
    std::vector<int64_t> row(p.ids.begin(), p.ids.end());
    for (uint32_t id : tokenizer.encode(" " + p.number + ".")) row.push_back(id);
    prompt_sizes.push_back(p.ids.size());
    longest = std::max(longest, row.size());
    rows.push_back(std::move(row));
  }
  // Answers may tokenize to different lengths: rows are padded at the end, and padded targets ignored.
  const int64_t T = static_cast<int64_t>(longest) - 1;
  auto x = torch::zeros({batch_size, T}, torch::kLong);
  auto y = torch::full({batch_size, T}, -100, torch::kLong);
  auto xs = x.accessor<int64_t, 2>();
  auto ys = y.accessor<int64_t, 2>();
  for (int64_t b = 0; b < batch_size; ++b) {
    const auto& row = rows[b];
    for (size_t t = 0; t + 1 < row.size(); ++t) {
      xs[b][t] = row[t];
      if (t + 1 >= prompt_sizes[b]) ys[b][t] = row[t + 1];  // the next token is part of the answer
    }
  }
  return {x, y};
}

int run_finetune(const FinetuneArgs& args) {
  if (args.task != "needle") throw UsageError("--task " + args.task + ": the only task is needle");
  if (args.lengths.empty()) throw UsageError("--lengths: give at least one length");
  const std::string source = resolve_checkpoint(args.checkpoint);
  const CheckpointMeta source_meta = read_checkpoint_meta(source);
  const std::string source_run = fs::path(source).parent_path().parent_path().string();

  // The source run's config with finetuning defaults, then the user's --set.
  json merged = source_meta.config;
  merged["out_dir"] = fs::path(source_run).lexically_normal().string() + "-ft-needle";
  merged["train"]["max_steps"] = 200;
  merged["train"]["log_every"] = 10;
  merged["train"]["eval_every"] = 50;
  merged["train"]["eval_batches"] = 4;
  merged["train"]["checkpoint_every"] = 100;
  merged["train"]["grad_accum_steps"] = 1;
  merged["optim"]["lr"] = 3e-4;
  merged["optim"]["min_lr"] = 3e-5;
  merged["optim"]["warmup_steps"] = 20;
  for (const auto& assignment : args.overrides) apply_override(merged, assignment);
  const Config config = config_from_json(merged, "finetune " + args.checkpoint);
  if (config_to_json(config)["model"] != source_meta.config["model"])
    throw UsageError("finetune: model.* keys cannot change (the weights come from " + source + ")");
  const int64_t longest = *std::max_element(args.lengths.begin(), args.lengths.end());
  if (config.model.position == "learned" && longest + 10 > config.model.block_size)
    throw UsageError("--lengths " + std::to_string(longest) + ": learned positions need prompt + answer (~10 tokens) <= "
                     "model.block_size = " + std::to_string(config.model.block_size));

  // Everything that can refuse the command does so before the run directory is made.
  const PreparedDataset dataset = load_prepared_dataset(source_meta.dataset_dir);
  auto objective = std::make_unique<NeedleObjective>(dataset, config, args.lengths);
  objective->check_lengths();

  const RunDirState state = open_run_dir(config);
  const std::string run_dir = config.out_dir;
  const json task = {{"task", args.task}, {"source", fs::absolute(source).lexically_normal().string()},
                     {"lengths", args.lengths}};
  const fs::path task_file = fs::path(run_dir) / "finetune.json";
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
    const CheckpointMeta stored = read_checkpoint_meta(latest);
    truncate_logs_to_checkpoint(run_dir, stored);
    log_to_file((fs::path(run_dir) / "train.log").string());
    session->meta = load_checkpoint(latest, session->model, session->optimizer.get());
    apply_optimizer_config(*session->optimizer, config.optim);
    spdlog::info("finetune: resumed {} at step {}/{}", run_dir, session->meta.step, config.train.max_steps);
  } else {
    log_to_file((fs::path(run_dir) / "train.log").string());
    load_checkpoint(source, session->model, nullptr);
    session->meta.dataset_dir = source_meta.dataset_dir;
    session->meta.dataset_fingerprint = source_meta.dataset_fingerprint;
    spdlog::info("finetune --task needle: {} → {}, {} steps of {} prompts, lengths {}", source, run_dir,
                 config.train.max_steps, config.train.batch_size, json(args.lengths).dump());
  }
  session->meta.config = config_to_json(config);
  session->model->to(session->device);
  session->dataset = dataset;
  session->objective = std::move(objective);
  session->continue_command = "the same finetune command again";

  TrainOptions options;
  options.stop_at = args.stop_at;
  const TrainSummary summary = run_training_loop(*session, options);
  if (summary.interrupted) return InterruptGuard::requested() ? 130 : 0;
  spdlog::info("finetune done: {} steps; evaluate with: ssmax-gpt needle {}", summary.steps, run_dir);
  return 0;
}

}  // namespace ssmax
