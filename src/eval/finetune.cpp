// `finetune --task needle`: teach retrieval with loss on the answer tokens only, in a run directory of its
// own. Examples are a pure function of (seed, step, index), and checkpoints carry the optimizer and RNG,
// so rerunning the same command continues where an interrupted one stopped.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "eval/eval_commands.h"
#include "eval/eval_model.h"
#include "eval/finetune.h"
#include "eval/needle_prompt.h"
#include "report/metrics.h"
#include "train/optimizer.h"
#include "train/run_dir.h"
#include "train/schedule.h"
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

double answer_loss(GPT& model, const std::pair<torch::Tensor, torch::Tensor>& batch, const torch::Device& device) {
  auto logits = model->forward(batch.first.to(device));
  return torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}),
                                              batch.second.to(device).reshape({-1}))
      .item<double>();
}

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

  set_eval_threads(config.threads);
  const torch::Device device = resolve_device(config.device);
  GPT model(GPTOptions{config.model, source_meta.vocab_size});
  model->to(device);
  auto optimizer = make_optimizer(*model, config.optim);
  CheckpointMeta meta;
  if (state == RunDirState::SameRunUnfinished) {
    const std::string latest = find_resume_checkpoint(run_dir);
    meta = read_checkpoint_meta(latest);
    for (const char* name : {"metrics.jsonl", "train.log"}) {
      const fs::path path = fs::path(run_dir) / name;
      const uint64_t keep = std::string(name) == "train.log" ? meta.log_bytes : meta.metrics_bytes;
      if (fs::exists(path) && fs::file_size(path) > keep) fs::resize_file(path, keep);
    }
    log_to_file((fs::path(run_dir) / "train.log").string());
    meta = load_checkpoint(latest, model, optimizer.get());
    apply_optimizer_config(*optimizer, config.optim);
    spdlog::info("finetune: resumed {} at step {}/{}", run_dir, meta.step, config.train.max_steps);
  } else {
    log_to_file((fs::path(run_dir) / "train.log").string());
    load_checkpoint(source, model, nullptr);
    meta.vocab_size = source_meta.vocab_size;
    meta.dataset_dir = source_meta.dataset_dir;
    meta.dataset_fingerprint = source_meta.dataset_fingerprint;
    spdlog::info("finetune --task needle: {} → {}, {} steps of {} prompts, lengths {}", source, run_dir,
                 config.train.max_steps, config.train.batch_size, json(args.lengths).dump());
  }
  meta.config = config_to_json(config);
  model->to(device);

  // Train on the training split's text; the `needle` evaluation cuts its haystacks from the validation split.
  const PreparedDataset dataset = load_prepared_dataset(meta.dataset_dir);
  const Tokenizer tokenizer = Tokenizer::load(dataset.tokenizer_model);
  const TokenSource train_text = TokenSource::from_shard(dataset.train_shard);
  const TokenSource val_text = TokenSource::from_shard(dataset.val_shard);
  auto batch = [&](const TokenSource& text, int64_t step, uint64_t stream) {
    return needle_training_batch(tokenizer, text, args.lengths, config.train.batch_size, config.seed, step, stream);
  };

  std::vector<torch::Tensor> trainable;
  for (const auto& p : model->parameters())
    if (p.requires_grad()) trainable.push_back(p);
  const double clip = config.optim.grad_clip > 0 ? config.optim.grad_clip : INFINITY;
  const auto& t = config.train;
  const int64_t last_step = args.stop_at > 0 ? std::min<int64_t>(args.stop_at, t.max_steps) : t.max_steps;
  MetricsWriter metrics((fs::path(run_dir) / "metrics.jsonl").string());
  InterruptGuard interrupts;
  model->train();
  while (meta.step < last_step && !InterruptGuard::requested()) {
    const auto start = std::chrono::steady_clock::now();
    const int64_t step = meta.step;
    const double lr = learning_rate(config.optim, step, t.max_steps);
    set_learning_rate(*optimizer, lr);
    optimizer->zero_grad();
    const auto [x, y] = batch(train_text, step, 0);
    auto logits = model->forward(x.to(device));
    auto loss = torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}), y.to(device).reshape({-1}));
    loss.backward();
    const double grad_norm = torch::nn::utils::clip_grad_norm_(trainable, clip);
    const double step_loss = loss.item<double>();
    if (!std::isfinite(step_loss) || !std::isfinite(grad_norm))
      throw RuntimeFailure("finetune: non-finite loss or gradient at step " + std::to_string(step + 1));
    optimizer->step();
    meta.step = step + 1;
    meta.tokens += x.numel();
    meta.elapsed_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    meta.interval_loss += step_loss;
    meta.interval_steps += 1;
    meta.step_val_loss = NAN;
    const bool last = meta.step == t.max_steps;
    if (meta.step % t.log_every == 0 || last) {
      MetricsRecord record;
      record.step = meta.step;
      record.tokens = meta.tokens;
      record.train_loss = meta.interval_loss / meta.interval_steps;
      record.lr = lr;
      record.grad_norm = grad_norm;
      record.elapsed_s = meta.elapsed_s;
      metrics.write(record);
      spdlog::info("step {}/{} | answer loss {:.4f} | lr {:.2e} | grad {:.3f}", meta.step, t.max_steps,
                   *record.train_loss, lr, grad_norm);
      meta.interval_loss = 0;
      meta.interval_steps = 0;
    }
    if (meta.step % t.eval_every == 0 || last) {
      // A fixed set of validation-split prompts (stream 1), the same at every evaluation.
      torch::NoGradGuard no_grad;
      model->eval();
      double total = 0;
      for (int i = 0; i < t.eval_batches; ++i) total += answer_loss(model, batch(val_text, i, 1), device);
      model->train();
      MetricsRecord record;
      record.step = meta.step;
      record.tokens = meta.tokens;
      record.val_loss = meta.last_val_loss = meta.step_val_loss = total / t.eval_batches;
      record.lr = lr;
      record.elapsed_s = meta.elapsed_s;
      metrics.write(record);
      meta.best_val_loss = std::min(meta.best_val_loss, *record.val_loss);
      spdlog::info("step {} | val answer loss {:.4f}", meta.step, *record.val_loss);
    }
    if (meta.step % t.checkpoint_every == 0 || last || meta.step == last_step || InterruptGuard::requested()) {
      spdlog::default_logger()->flush();
      const fs::path dir = run_dir;
      meta.metrics_bytes = fs::exists(dir / "metrics.jsonl") ? fs::file_size(dir / "metrics.jsonl") : 0;
      meta.log_bytes = fs::exists(dir / "train.log") ? fs::file_size(dir / "train.log") : 0;
      const std::string path = checkpoint_path(run_dir, meta.step);
      save_checkpoint(path, model, *optimizer, meta);
      prune_checkpoints(run_dir, t.keep_last);
      spdlog::info("checkpoint {}", path);
    }
  }
  if (meta.step < t.max_steps) {
    spdlog::info("stopped at step {}/{}; continue by running the same finetune command again", meta.step, t.max_steps);
    return InterruptGuard::requested() ? 130 : 0;
  }
  spdlog::info("finetune done: {} steps; evaluate with: ssmax-gpt needle {}", meta.step, run_dir);
  return 0;
}

}  // namespace ssmax
