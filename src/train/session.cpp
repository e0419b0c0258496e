// Building what a training loop needs (session.h): device, threads, model, optimizer, dataset, objective; joining
// a distributed launch; reopening a run's logs to continue it.
#include "train/session.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>

#include "data/recall_task.h"
#include "dist/distributed.h"
#include "run/device.h"
#include "run/metrics.h"
#include "run/run_paths.h"
#include "run/tensorboard.h"
#include "train/cpu_blas.h"
#include "train/optimizer.h"
#include "train/precision.h"
#include "util/errors.h"
#include "util/logging.h"
#include "util/system_info.h"

namespace ssmax {
namespace fs = std::filesystem;

std::unique_ptr<Session> make_model_session(const Config& config, const std::string& run_dir, int64_t vocab_size,
                                            const std::string& resumed_with) {
  auto s = std::make_unique<Session>();
  s->config = config;
  s->run_dir = run_dir;
  auto& dist = Distributed::instance();
  at::set_num_threads(config.threads > 0 ? config.threads : dist.default_threads(hardware_threads()));
  s->device = dist.rank_device(resolve_device(config.device));
  configure_precision(config.train, s->device);
  if (s->device.is_cpu())
    s->meta.cpu_blas_used =
        cpu_blas_name(choose_cpu_blas(config.cpu_blas, config.model, vocab_size,
                                      static_cast<int64_t>(config.train.batch_size) * config.model.block_size,
                                      cpu_blas_from_name(resumed_with))
                          .blas);
  torch::manual_seed(config.seed);  // the initial weights depend on the seed alone
  s->model = GPT(GPTOptions{config.model, vocab_size});
  s->model->to(s->device);
  s->model->train();
  s->optimizer = make_optimizer(*s->model, config.optim);
  s->meta.config = config_to_json(config);
  s->meta.vocab_size = vocab_size;
  return s;
}

namespace {

// The recall task has no files: its "dataset" is the task's sizes, which checkpoints record as the fingerprint.
std::unique_ptr<Session> make_recall_session(const Config& config, const std::string& run_dir,
                                             const std::string& resumed_with) {
  const RecallTask task(config.data, config.model.block_size);
  PreparedDataset dataset;
  dataset.vocab_size = static_cast<int>(task.vocab_size());
  dataset.fingerprint = task.fingerprint();
  dataset.dir = "generated: " + task.fingerprint();
  dataset.unigram_entropy_nats = std::log(static_cast<double>(task.values()));  // the answers' chance loss
  auto s = make_model_session(config, run_dir, dataset.vocab_size, resumed_with);
  s->objective = recall_objective(config);
  s->meta.dataset_fingerprint = dataset.fingerprint;  // meta.dataset_dir stays empty: there is no directory
  s->dataset = std::move(dataset);
  s->continue_command = "ssmax-gpt train --resume " + run_dir;
  return s;
}

}  // namespace

std::unique_ptr<Session> make_session(const Config& config, const std::string& run_dir,
                                      const std::string& resumed_with) {
  auto& dist = Distributed::instance();
  dist.rank_device(resolve_device(config.device));  // refuse a missing device before a long prepare
  at::set_num_threads(config.threads > 0 ? config.threads : dist.default_threads(hardware_threads()));
  if (config.data.task == "mqar") return make_recall_session(config, run_dir, resumed_with);
  // Rank 0 prepares (tokenizer, shards); the others then find the dataset ready (on a shared filesystem).
  std::optional<PreparedDataset> prepared;
  dist.on_main(
      "data preparation",
      [&] {
        prepared = prepare_dataset(config.data, config.threads);
        return prepared->dir;
      },
      std::chrono::hours(24));
  PreparedDataset dataset = prepared ? std::move(*prepared) : prepare_dataset(config.data, config.threads);
  auto s = make_model_session(config, run_dir, dataset.vocab_size, resumed_with);
  s->objective = language_model_objective(dataset, config);
  s->meta.dataset_fingerprint = dataset.fingerprint;
  s->meta.dataset_dir = dataset.dir;
  s->dataset = std::move(dataset);
  s->continue_command = "ssmax-gpt train --resume " + run_dir;
  if (dist.active()) s->continue_command += " (under torchrun again, with any number of processes, or alone)";
  return s;
}

void reopen_run_logs(const std::string& run_dir, const CheckpointMeta& meta) {
  if (!Distributed::instance().is_main()) return;
  // Whatever was written after the checkpoint is cut off: the run continues from it without stale or doubled steps.
  const std::pair<std::string, uint64_t> logs[] = {
      {fs::path(RunPaths(run_dir).metrics()).filename(), meta.metrics_bytes},
      {fs::path(RunPaths(run_dir).log()).filename(), meta.log_bytes},
      {fs::path(RunPaths(run_dir).events()).filename(), meta.events_bytes}};
  for (const auto& [name, bytes] : logs) {
    const fs::path file = fs::path(run_dir) / name;
    std::error_code error;
    const auto size = fs::file_size(file, error);
    if (!error && size > bytes) fs::resize_file(file, bytes);
  }
  // Then what is left must end where a whole record ends: the checkpoint's byte counts say nothing of a file torn
  // or damaged below them (a crash before the page cache reached the disk, a full disk, a copy cut short).
  const std::string repaired[] = {repair_metrics_file(RunPaths(run_dir).metrics()),
                                  repair_event_file(RunPaths(run_dir))};
  log_to_file(RunPaths(run_dir).log());
  for (const auto& warning : repaired)
    if (!warning.empty()) spdlog::warn("{}", warning);
}

void join_process_group(const Config& config) {
  auto& dist = Distributed::instance();
  dist.join(dist.rank_device(resolve_device(config.device)), std::chrono::seconds(config.distributed.timeout_s));
  log_as_rank(dist.rank());
}

std::vector<std::string> describe_ranks(const torch::Device& device) {
  auto& dist = Distributed::instance();
  if (!dist.active()) return {};
  const auto& env = dist.environment();
  return dist.gather("run header", fmt::format("{} on {} (local rank {}, {} threads, {})", device.str(), host_name(),
                                               env.local_rank, at::get_num_threads(), dist.backend_name()));
}

}  // namespace ssmax
