// The training loop: data → model → AdamW, with logging, evaluation and checkpoints.
#include "train/trainer.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>

#include "data/loader.h"
#include "data/prepare.h"
#include "model/gpt.h"
#include "report/metrics.h"
#include "train/checkpoint.h"
#include "train/optimizer.h"
#include "train/run_dir.h"
#include "train/schedule.h"
#include "util/errors.h"
#include "util/logging.h"
#include "util/system_info.h"

namespace ssmax {
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

torch::Device resolve_device(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  if (name == "auto") return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  if (!torch::cuda::is_available())
    throw UsageError("device = \"" + name + "\" but this LibTorch build sees no CUDA device; use \"cpu\" or \"auto\"");
  torch::Device device(name);
  if (device.has_index() && device.index() >= static_cast<int>(torch::cuda::device_count()))
    throw UsageError("device = \"" + name + "\" but only " + std::to_string(torch::cuda::device_count()) +
                     " CUDA device(s) exist");
  return device;
}

std::string format_duration(double seconds) {
  int s = static_cast<int>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}h{:02d}m", s / 3600, (s % 3600) / 60);
  if (s >= 60) return fmt::format("{}m{:02d}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

// The learned SSMax parameters of every layer, [layer][head] (empty for softmax).
void read_normalizer_parameters(GPT& model, MetricsRecord& record) {
  for (auto& block : *model->h) {
    auto& normalizer = block->as<Block>()->attn->normalizer;
    auto to_vector = [](const torch::Tensor& t) {
      auto cpu = t.detach().to(torch::kCPU, torch::kDouble).contiguous();
      return std::vector<double>(cpu.data_ptr<double>(), cpu.data_ptr<double>() + cpu.numel());
    };
    if (normalizer->s.defined()) record.s.push_back(to_vector(normalizer->s));
    if (normalizer->b.defined()) record.b.push_back(to_vector(normalizer->b));
  }
}

double evaluate(GPT& model, const BatchLoader& loader, int batches, const torch::Device& device) {
  torch::NoGradGuard no_grad;
  model->eval();
  double total = 0;
  for (int i = 0; i < batches; ++i) {
    auto [x, y] = loader.eval_batch(i, batches);
    total += model->loss(x.to(device), y.to(device)).item<double>();
  }
  model->train();
  return total / batches;
}

}  // namespace

TrainSummary train(const Config& config) {
  const RunDirState state = open_run_dir(config);
  const std::string run_dir = config.out_dir;
  if (state == RunDirState::SameRunUnfinished)
    throw UsageError("out_dir = '" + run_dir + "' already holds this run, unfinished; continue it with "
                     "`ssmax-gpt train --resume " + run_dir + "` or pick another out_dir");
  log_to_file((fs::path(run_dir) / "train.log").string());

  const int threads = config.threads > 0 ? config.threads : hardware_threads();
  at::set_num_threads(threads);
  const torch::Device device = resolve_device(config.device);

  PreparedDataset dataset = prepare_dataset(config.data);
  TokenShard train_shard = TokenShard::open(dataset.train_shard);
  TokenShard val_shard = TokenShard::open(dataset.val_shard);
  for (const TokenShard* shard : {&train_shard, &val_shard})
    if (shard->vocab_size() != static_cast<uint32_t>(dataset.vocab_size))
      throw RuntimeFailure("tokenizer/shard vocabulary mismatch: " + shard->path() + " was encoded with vocab " +
                           std::to_string(shard->vocab_size()) + " but the tokenizer has " +
                           std::to_string(dataset.vocab_size) + " (delete " + dataset.dir + " and prepare again)");

  TrainSummary summary;
  summary.run_dir = run_dir;
  summary.unigram_entropy = dataset.unigram_entropy_nats;
  if (state == RunDirState::SameRunComplete) {
    auto meta = read_checkpoint_meta(checkpoint_path(run_dir, config.train.max_steps));
    spdlog::info("{} already holds this run, complete at step {}: nothing to train", run_dir, meta.step);
    summary.steps = meta.step;
    summary.final_val_loss = meta.last_val_loss;
    summary.best_val_loss = meta.best_val_loss;
    summary.already_complete = true;
    return summary;
  }

  torch::manual_seed(config.seed);
  GPT model(GPTOptions{config.model, dataset.vocab_size});
  model->to(device);
  model->train();
  auto optimizer = make_optimizer(*model, config.optim);
  log_run_header(config, model->num_parameters(), dataset.vocab_size, device.str(), dataset.dir,
                 dataset.unigram_entropy_nats);

  const auto& t = config.train;
  BatchLoader train_loader(train_shard, config.model.block_size, t.batch_size, config.seed);
  BatchLoader val_loader(val_shard, config.model.block_size, t.batch_size, config.seed);
  MetricsWriter metrics((fs::path(run_dir) / "metrics.jsonl").string());
  std::vector<torch::Tensor> trainable;
  for (const auto& p : model->parameters())
    if (p.requires_grad()) trainable.push_back(p);
  const double clip = config.optim.grad_clip > 0 ? config.optim.grad_clip : std::numeric_limits<double>::infinity();
  const int64_t tokens_per_step = int64_t{t.batch_size} * t.grad_accum_steps * config.model.block_size;

  CheckpointMeta meta;
  meta.config = config_to_json(config);
  meta.vocab_size = dataset.vocab_size;
  meta.dataset_fingerprint = dataset.fingerprint;
  meta.dataset_dir = dataset.dir;

  double interval_loss = 0, interval_seconds = 0, last_train_loss = NAN;
  int interval_steps = 0;
  for (int64_t step = meta.step; step < t.max_steps; ++step) {
    const auto step_start = Clock::now();
    const double lr = learning_rate(config.optim, step, t.max_steps);
    set_learning_rate(*optimizer, lr);
    optimizer->zero_grad();
    double step_loss = 0;
    for (int micro = 0; micro < t.grad_accum_steps; ++micro) {
      auto [x, y] = train_loader.train_batch(step, micro);
      auto loss = model->loss(x.to(device), y.to(device)) / t.grad_accum_steps;
      loss.backward();
      step_loss += loss.item<double>();
    }
    const double grad_norm = torch::nn::utils::clip_grad_norm_(trainable, clip);
    if (!std::isfinite(step_loss) || !std::isfinite(grad_norm)) {
      auto checkpoints = list_checkpoints(run_dir);
      throw RuntimeFailure(fmt::format("non-finite {} at step {} (loss {}, grad norm {}); the last good checkpoint is {}",
                                       std::isfinite(step_loss) ? "gradient norm" : "loss", step + 1, step_loss,
                                       grad_norm, checkpoints.empty() ? "none" : checkpoints.back()));
    }
    optimizer->step();
    const double step_seconds = seconds_since(step_start);
    meta.step = step + 1;
    meta.tokens += tokens_per_step;
    meta.elapsed_s += step_seconds;
    interval_loss += step_loss, interval_seconds += step_seconds, ++interval_steps;

    const bool last = meta.step == t.max_steps;
    if (meta.step % t.log_every == 0 || last) {
      MetricsRecord record;
      record.step = meta.step;
      record.tokens = meta.tokens;
      record.train_loss = last_train_loss = interval_loss / interval_steps;
      record.lr = lr;
      record.grad_norm = grad_norm;
      record.tokens_per_s = tokens_per_step * interval_steps / interval_seconds;
      record.ms_per_step = 1000 * interval_seconds / interval_steps;
      record.elapsed_s = meta.elapsed_s;
      read_normalizer_parameters(model, record);
      metrics.write(record);
      const double eta = (t.max_steps - meta.step) * interval_seconds / interval_steps;
      spdlog::info("step {:>{}}/{} | loss {:.4f} | lr {:.2e} | grad {:.3f} | {:.0f} ms/step | {:.0f} tok/s | ETA {}",
                   meta.step, std::to_string(t.max_steps).size(), t.max_steps, *record.train_loss, lr, grad_norm,
                   *record.ms_per_step, *record.tokens_per_s, format_duration(eta));
      interval_loss = interval_seconds = 0;
      interval_steps = 0;
    }
    if (meta.step % t.eval_every == 0 || last) {
      const auto eval_start = Clock::now();
      MetricsRecord record;
      record.step = meta.step;
      record.tokens = meta.tokens;
      record.val_loss = meta.last_val_loss = evaluate(model, val_loader, t.eval_batches, device);
      record.lr = lr;
      record.elapsed_s = meta.elapsed_s;
      read_normalizer_parameters(model, record);
      metrics.write(record);
      meta.best_val_loss = std::min(meta.best_val_loss, *record.val_loss);
      spdlog::info("step {} | val loss {:.4f} (best {:.4f}) | eval {:.1f}s", meta.step, *record.val_loss,
                   meta.best_val_loss, seconds_since(eval_start));
    }
    if (meta.step % t.checkpoint_every == 0 || last) {
      const std::string path = checkpoint_path(run_dir, meta.step);
      save_checkpoint(path, model, *optimizer, meta);
      prune_checkpoints(run_dir, t.keep_last);
      spdlog::info("checkpoint {}", path);
    }
  }

  summary.steps = meta.step;
  summary.final_train_loss = last_train_loss;
  summary.final_val_loss = meta.last_val_loss;
  summary.best_val_loss = meta.best_val_loss;
  summary.tokens_per_s = meta.elapsed_s > 0 ? meta.tokens / meta.elapsed_s : 0;
  spdlog::info("done: {} steps, final val loss {:.4f} (unigram entropy {:.3f}), {:.0f} tokens/s, {}", summary.steps,
               summary.final_val_loss, summary.unigram_entropy, summary.tokens_per_s, format_duration(meta.elapsed_s));
  return summary;
}

}  // namespace ssmax
