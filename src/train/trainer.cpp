// The training loop: data → model → AdamW, with logging, evaluation and checkpoints.
#include "train/trainer.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <optional>

#include "dist/distributed.h"
#include "dist/replicas.h"
#include "run/metrics.h"
#include "run/run_paths.h"
#include "run/tensorboard.h"
#include "train/optimizer.h"
#include "train/peak_flops.h"
#include "train/precision.h"
#include "train/run_dir.h"
#include "train/schedule.h"
#include "train/session.h"
#include "train/train_step.h"
#include "util/errors.h"
#include "util/interrupt.h"
#include "util/logging.h"
#include "util/progress.h"

namespace ssmax {
namespace fs = std::filesystem;

namespace {

// A loss or gradient norm that is not finite ends the run without saving (the checkpoint would hold the damage),
// naming the last good checkpoint to resume or fine-tune from.
[[noreturn]] void stop_non_finite(const std::string& run_dir, const std::string& what, int64_t step,
                                  const std::string& values) {
  const auto checkpoints = list_checkpoints(run_dir);
  throw RuntimeFailure(fmt::format("non-finite {} at step {} ({}); stopped without saving. Last good checkpoint: {}",
                                   what, step, values, checkpoints.empty() ? "none" : checkpoints.back().path));
}

using Clock = std::chrono::steady_clock;

std::string format_duration(double seconds) {
  int s = static_cast<int>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}h{:02d}m", s / 3600, (s % 3600) / 60);
  if (s >= 60) return fmt::format("{}m{:02d}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

// What every record of the run carries: where it is (step, tokens, time, processes), the learning rate, and the
// normalizer's learned parameters of every layer, [layer][head].
MetricsRecord progress_record(Session& s, double lr) {
  MetricsRecord record;
  record.step = s.meta.step;
  record.tokens = s.meta.tokens;
  record.lr = lr;
  record.elapsed_s = s.meta.elapsed_s;
  record.world_size = Distributed::instance().world_size();
  for (auto& block : *s.model->h)
    for (const auto& item : block->as<Block>()->attn->normalizer->named_parameters(/*recurse=*/false)) {
      const auto values = item.value().detach().to(torch::kCPU, torch::kDouble).contiguous();
      record.normalizer[item.key()].emplace_back(values.data_ptr<double>(), values.data_ptr<double>() + values.numel());
    }
  return record;
}

// Distributed: each rank evaluates every world_size-th batch and the sums are added, so the mean is over the
// same batches as in one process.
double evaluate(Session& s) {
  torch::NoGradGuard no_grad;
  s.model->eval();
  AutocastScope autocast(s.device, uses_bf16(s.config.train));
  auto& dist = Distributed::instance();
  const int batches = s.config.train.eval_batches;
  double loss = 0;
  if (!dist.active()) {
    loss = s.objective->validation_loss(s.model, batches, s.device);
  } else {
    auto sum =
        torch::tensor({s.objective->validation_loss_sum(s.model, batches, dist.rank(), dist.world_size(), s.device)},
                      torch::TensorOptions(torch::kDouble).device(s.device));
    dist.all_reduce_sum(sum, "validation all-reduce");
    loss = sum.item<double>() / batches;
  }
  s.model->train();
  return loss;
}

uint64_t size_or_zero(const fs::path& path) {
  std::error_code error;
  auto size = fs::file_size(path, error);
  return error ? 0 : size;
}

std::string save_checkpoint_files(Session& s) {
  const fs::path dir = s.run_dir;
  spdlog::default_logger()->flush();
  const RunPaths files(s.run_dir);
  s.meta.metrics_bytes = size_or_zero(files.metrics());
  s.meta.log_bytes = size_or_zero(files.log());
  s.meta.events_bytes = size_or_zero(files.events());
  const std::string path = checkpoint_path(s.run_dir, s.meta.step);
  write_checkpoint_file(path, training_state_parts(s.meta, s.model, s.optimizer.get()).all(), s.meta);
  prune_checkpoints(s.run_dir, s.config.train.keep_last);
  spdlog::info("checkpoint {}", path);
  return path;
}

// Rank 0 writes; the others wait for it, so a failed write stops every rank.
std::string write_checkpoint(Session& s) {
  check_replicas_agree(*s.model, s.meta.step);
  auto& dist = Distributed::instance();
  dist.heartbeat(s.meta.step, "checkpoint");
  return dist.on_main(
      "checkpoint", [&] { return save_checkpoint_files(s); }, dist.timeout());
}

// The steps this process timed since the last log line (after a resume, part of the interval ran before).
struct LogInterval {
  double seconds = 0, sync_seconds = 0;
  int64_t tokens = 0, steps = 0;
  void add(const StepResult& result, double step_seconds) {
    seconds += step_seconds, sync_seconds += result.sync_seconds, tokens += result.tokens, steps += 1;
  }
};

// One training step with the stop agreed by every rank: how many ranks SIGINT and SIGTERM asked to stop ride on the
// step's all-reduce, so that all stop after the same step with the same exit code (distributed only: sets `stop`).
StepResult take_step(TrainStep& train_step, int64_t step, bool more, bool& stop) {
  std::vector<double> stop_requests;
  if (train_step.distributed()) {
    const int signal = InterruptGuard::signal_number();
    stop_requests = {signal == SIGINT ? 1.0 : 0.0, signal != 0 && signal != SIGINT ? 1.0 : 0.0};
  }
  const StepResult result = train_step.run(step, more, stop_requests);
  if (train_step.distributed()) {
    const bool any_sigint = result.summed[0] > 0, any_sigterm = result.summed[1] > 0;
    stop = any_sigint || any_sigterm;
    if (stop && !InterruptGuard::requested()) InterruptGuard::adopt(any_sigterm ? SIGTERM : SIGINT);
  }
  return result;
}

// The interval's record and console line; starts the next interval. Returns the interval's mean training loss.
double log_interval(Session& s, MetricsWriter* metrics, LogInterval& interval, double lr, double grad_norm,
                    MfuMeter& mfu, double flops_per_token, bool distributed) {
  const auto& t = s.config.train;
  auto& meta = s.meta;
  MetricsRecord record = progress_record(s, lr);
  record.train_loss = meta.interval_loss / meta.interval_steps;
  record.grad_norm = grad_norm;
  record.tokens_per_s = interval.tokens / std::max(interval.seconds, 1e-9);
  record.ms_per_step = 1000 * interval.seconds / interval.steps;
  if (distributed) record.sync_ms = 1000 * interval.sync_seconds / interval.steps;
  record.mfu = mfu.mfu(flops_per_token * *record.tokens_per_s / Distributed::instance().world_size());
  if (metrics) metrics->write(record);
  const double eta = (t.max_steps - meta.step) * interval.seconds / interval.steps;
  spdlog::info("step {:>{}}/{} | {} {:.4f} | lr {:.2e} | grad {:.3f} | {:.0f} ms/step{} | {:.0f} tok/s{} | ETA {}",
               meta.step, std::to_string(t.max_steps).size(), t.max_steps, s.objective->train_loss_name(),
               *record.train_loss, lr, grad_norm, *record.ms_per_step,
               record.sync_ms ? fmt::format(" (sync {:.0f})", *record.sync_ms) : "", *record.tokens_per_s,
               record.mfu ? fmt::format(" | mfu {:.1f}%", 100 * *record.mfu) : "", format_duration(eta));
  meta.interval_loss = 0;
  meta.interval_steps = 0;
  interval = {};
  return *record.train_loss;
}

void log_validation(Session& s, MetricsWriter* metrics, double lr) {
  const auto eval_start = Clock::now();
  auto& meta = s.meta;
  Distributed::instance().heartbeat(meta.step, "evaluation");
  MetricsRecord record = progress_record(s, lr);
  record.val_loss = meta.last_val_loss = meta.step_val_loss = evaluate(s);
  // Weights that an update made inf/NaN show here first when the next training step is still to come.
  if (!std::isfinite(*record.val_loss))
    stop_non_finite(s.run_dir, "validation loss", meta.step, fmt::format("val loss {}", *record.val_loss));
  if (metrics) metrics->write(record);
  meta.best_val_loss = std::min(meta.best_val_loss, *record.val_loss);
  spdlog::info("step {} | val {} {:.4f} (best {:.4f}) | eval {:.1f}s", meta.step, s.objective->loss_name(),
               *record.val_loss, meta.best_val_loss, seconds_since(eval_start));
}

TrainSummary finish(Session& s, TrainSummary summary, double last_train_loss) {
  const auto& meta = s.meta;
  const int64_t max_steps = s.config.train.max_steps;
  summary.steps = meta.step;
  summary.final_train_loss = last_train_loss;
  summary.final_val_loss = meta.last_val_loss;
  summary.best_val_loss = meta.best_val_loss;
  summary.tokens_per_s = meta.elapsed_s > 0 ? meta.tokens / meta.elapsed_s : 0;
  summary.interrupted = meta.step < max_steps;
  if (summary.interrupted) {
    if (summary.last_checkpoint.empty()) summary.last_checkpoint = write_checkpoint(s);
    spdlog::info("stopped at step {}/{}; continue with: {}", meta.step, max_steps, s.continue_command);
  } else {
    spdlog::info("done: {} steps, final val {} {:.4f}{}, {:.0f} tokens/s, {}", summary.steps, s.objective->loss_name(),
                 summary.final_val_loss, s.objective->baseline_note(), summary.tokens_per_s,
                 format_duration(meta.elapsed_s));
  }
  return summary;
}

}  // namespace

TrainSummary run_training_loop(Session& s, const TrainOptions& options) {
  const auto& config = s.config;
  const auto& t = config.train;
  auto& meta = s.meta;
  auto& dist = Distributed::instance();
  std::optional<MetricsWriter> metrics;  // rank 0 writes the run's files
  if (dist.is_main()) metrics.emplace(RunPaths(s.run_dir).metrics(), RunPaths(s.run_dir).events());
  MetricsWriter* writer = metrics ? &*metrics : nullptr;
  const int64_t last_step = options.stop_at > 0 ? std::min<int64_t>(options.stop_at, t.max_steps) : t.max_steps;
  if (dist.active()) dist.heartbeat(meta.step, "start");
  TrainStep train_step(s);
  meta.world_size = dist.world_size();
  const double flops_per_token = s.model->flops_per_token(config.model.block_size, s.objective->head_share());
  MfuMeter mfu(s.device, uses_bf16(t), device_peak_flops(s.device, uses_bf16(t)));
  if (mfu.peak().tflops > 0)
    spdlog::info("mfu against a peak of {:.3g} TFLOP/s per process ({}), {:.3g} model FLOPs per token",
                 mfu.peak().tflops, mfu.peak().source, flops_per_token);

  TrainSummary summary;
  summary.run_dir = s.run_dir;
  summary.unigram_entropy = s.dataset.unigram_entropy_nats;
  InterruptGuard interrupts;
  LogInterval interval;
  double last_train_loss = NAN;
  // Distributed: stopping is agreed after a step (take_step), so that every rank stops after the same one.
  bool stop = !train_step.distributed() && InterruptGuard::requested();
  while (meta.step < last_step && !stop) {
    const int64_t step = meta.step;  // 0-based index of the step being taken
    const auto step_start = Clock::now();
    const double lr = learning_rate(config.optim, step, t.max_steps);
    set_learning_rate(*s.optimizer, lr);
    const StepResult result = take_step(train_step, step, step + 1 < last_step, stop);
    if (!result.updated)
      stop_non_finite(s.run_dir, std::isfinite(result.loss) ? "gradient norm" : "loss", step + 1,
                      fmt::format("loss {}, grad norm {}", result.loss, result.grad_norm));
    const double step_seconds = seconds_since(step_start);
    meta.step = step + 1;
    meta.tokens += result.tokens;
    meta.elapsed_s += step_seconds;
    meta.interval_loss += result.loss;
    meta.interval_steps += 1;
    meta.step_val_loss = NAN;
    interval.add(result, step_seconds);

    const bool last = meta.step == t.max_steps;
    if (meta.step % t.log_every == 0 || last)
      last_train_loss =
          log_interval(s, writer, interval, lr, result.grad_norm, mfu, flops_per_token, train_step.distributed());
    if (meta.step % t.eval_every == 0 || last) log_validation(s, writer, lr);
    if (!train_step.distributed()) stop = InterruptGuard::requested();
    if (meta.step % t.checkpoint_every == 0 || last || meta.step == last_step || stop)
      summary.last_checkpoint = write_checkpoint(s);
  }
  return finish(s, summary, last_train_loss);
}

TrainSummary train(const Config& config, const TrainOptions& options) {
  join_process_group(config);
  if (!config.init_from.empty() && !options.initializer.load)
    throw UsageError("init_from = '" + config.init_from +
                     "': only `ssmax-gpt train CONFIG` imports a checkpoint; train it there, or leave init_from empty");
  // A checkpoint that contradicts itself is refused before the run directory or the data exist (headers only).
  if (options.initializer.check) options.initializer.check(config);
  auto& dist = Distributed::instance();
  // Rank 0 alone looks at (and writes) the run directory; the others follow its verdict.
  const auto state = static_cast<RunDirState>(std::stoi(dist.on_main(
      "opening out_dir", [&] { return std::to_string(static_cast<int>(open_run_dir(config))); }, dist.timeout())));
  const std::string& run_dir = config.out_dir;
  if (state == RunDirState::SameRunUnfinished)
    throw UsageError("out_dir = '" + run_dir +
                     "' already holds this run, unfinished; continue it with "
                     "`ssmax-gpt train --resume " +
                     run_dir + "` or pick another out_dir");
  if (state == RunDirState::SameRunComplete) {
    auto meta = read_checkpoint_meta(checkpoint_path(run_dir, config.train.max_steps));
    spdlog::info("{} already holds this run, complete at step {}: nothing to train", run_dir, meta.step);
    TrainSummary summary;
    summary.run_dir = run_dir;
    summary.steps = meta.step;
    summary.final_val_loss = meta.last_val_loss;
    summary.best_val_loss = meta.best_val_loss;
    summary.already_complete = true;
    return summary;
  }
  if (dist.is_main()) log_to_file(RunPaths(run_dir).log());
  auto session = make_session(config, run_dir);
  if (options.initializer.load) {
    options.initializer.load(config, session->model);
    spdlog::info("initialised from {}", options.initializer.source);
  }
  const auto ranks = describe_ranks(session->device);
  log_run_header(config, session->model->num_parameters(), session->dataset.vocab_size, session->device.str(),
                 session->dataset.dir, session->dataset.unigram_entropy_nats, ranks);
  return run_training_loop(*session, options);
}

}  // namespace ssmax
