#include "train/bench.h"

#include <torch/torch.h>

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <random>

#include "data/document_index.h"
#include "data/token_stream.h"
#include "kernels/gemm.h"
#include "train/device_memory.h"
#include "train/op_profile.h"
#include "train/optimizer.h"
#include "train/peak_flops.h"
#include "train/precision.h"
#include "train/schedule.h"
#include "train/session.h"
#include "train/train_step.h"
#include "util/system_info.h"

namespace ssmax {
namespace {

// A dataset of random tokens in a temporary directory, removed again: one shard that serves as both splits; with
// document_tokens > 0 also a document index of documents of 1 … 2·document_tokens−1 tokens. What the bench's
// training objective reads, as a run's reads a prepared dataset.
class SyntheticDataset {
 public:
  SyntheticDataset(uint32_t vocab_size, size_t count, uint64_t seed, int64_t document_tokens)
      : dir_(std::filesystem::temp_directory_path() / ("ssmax-bench-" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(dir_);
    ShardedWriter writer(dir_.string(), "train", vocab_size, count);
    std::mt19937_64 random(seed);
    std::vector<uint32_t> ids(count);
    for (auto& id : ids) id = static_cast<uint32_t>(random() % vocab_size);
    writer.append(ids);
    dataset_.dir = dir_.string();
    dataset_.vocab_size = static_cast<int>(vocab_size);
    for (const auto& name : writer.finish()) dataset_.train_shards.push_back((dir_ / name).string());
    dataset_.val_shards = dataset_.train_shards;
    dataset_.train_tokens = dataset_.val_tokens = count;
    if (document_tokens <= 0) return;
    std::vector<uint64_t> starts;
    for (uint64_t start = 0; start < count; start += 1 + random() % (2 * document_tokens - 1)) starts.push_back(start);
    dataset_.train_documents = dataset_.val_documents = (dir_ / "train-documents.bin").string();
    DocumentIndex::write(dataset_.train_documents, starts, count);
    dataset_.train_document_count = dataset_.val_document_count = starts.size();
  }
  ~SyntheticDataset() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  const PreparedDataset& dataset() const { return dataset_; }

 private:
  std::filesystem::path dir_;
  PreparedDataset dataset_;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

std::vector<BenchResult> bench_normalizers(const Config& config, const std::vector<Normalizer>& normalizers,
                                           const BenchOptions& options) {
  const int steps = options.steps, warmup = options.warmup;
  const int64_t B = config.train.batch_size, T = config.model.block_size, V = config.data.tokenizer.vocab_size;
  const SyntheticDataset data(static_cast<uint32_t>(V), std::max<size_t>(1 << 20, 4 * B * (T + 1)), config.seed,
                              options.document_tokens);
  // Each contender is what a run trains: its session (threads, device, seeded model, AdamW) and objective.
  struct Contender {
    std::unique_ptr<Session> session;
    std::unique_ptr<TrainStep> step;
    std::vector<double> seconds, data, forward, backward, update;
    double peak_bytes = 0;
  };
  std::vector<Contender> contenders(normalizers.size());
  for (size_t i = 0; i < normalizers.size(); ++i) {
    Config contender_config = config;
    contender_config.model.attention.normalizer = normalizers[i];
    contenders[i].session = make_model_session(contender_config, "", V);
    contenders[i].session->objective = language_model_objective(data.dataset(), contender_config);
    contenders[i].step = std::make_unique<TrainStep>(*contenders[i].session);
  }
  const torch::Device device = contenders.front().session->device;
  const bool bf16 = uses_bf16(config.train);
  std::unique_ptr<OperatorProfile> profile;
  StepPhaseClock clock(device);
  for (int round = 0; round < warmup + steps; ++round) {
    if (round == warmup && !options.profile_path.empty()) profile = std::make_unique<OperatorProfile>();
    for (auto& c : contenders) {
      set_learning_rate(*c.session->optimizer, learning_rate(config.optim, round, config.train.max_steps));
      reset_peak_device_memory(device);
      clock.start();
      c.step->run(round, round + 1 < warmup + steps, {}, &clock);
      c.peak_bytes = std::max(c.peak_bytes, peak_device_memory(device));
      if (round >= warmup) {
        c.seconds.push_back(clock.total());
        c.data.push_back(clock.seconds(StepPhase::Data));
        c.forward.push_back(clock.seconds(StepPhase::Forward));
        c.backward.push_back(clock.seconds(StepPhase::Backward));
        c.update.push_back(clock.seconds(StepPhase::Update));
      }
    }
  }
  if (profile) {
    const auto operators = profile->finish(options.profile_path);
    spdlog::info("profile of {} timed steps × {} normalizer(s), trace in {}:\n{}", steps, contenders.size(),
                 options.profile_path, operator_table(operators, steps * static_cast<int>(contenders.size()), 25));
  }
  MfuMeter mfu(device, bf16,
               options.peak_tflops > 0 ? PeakFlops{options.peak_tflops, "given"} : device_peak_flops(device, bf16));
  std::vector<BenchResult> results;
  for (size_t i = 0; i < normalizers.size(); ++i) {
    BenchResult r;
    r.normalizer = normalizers[i];
    r.median_step_s = median(contenders[i].seconds);
    r.data_s = median(contenders[i].data);
    r.forward_s = median(contenders[i].forward);
    r.backward_s = median(contenders[i].backward);
    r.optimizer_s = median(contenders[i].update);
    r.tokens_per_s = static_cast<double>(B) * T * config.train.grad_accum_steps / r.median_step_s;
    r.parameters = contenders[i].session->model->num_parameters();
    r.flops_per_token = contenders[i].session->model->flops_per_token(T);
    r.peak_device_bytes = contenders[i].peak_bytes;
    r.peak_rss_mb = peak_rss_mb();
    if (device.is_cpu()) r.cpu_blas = gemm_backend();
    results.push_back(r);
  }
  // The fastest first: a peak it shows to be too low is corrected before any utilisation is computed from it.
  double fastest = 0;
  for (const auto& r : results) fastest = std::max(fastest, r.flops_per_token * r.tokens_per_s);
  mfu.mfu(fastest);
  for (auto& r : results) {
    r.mfu = mfu.mfu(r.flops_per_token * r.tokens_per_s).value_or(0);
    r.peak_tflops = mfu.peak().tflops;
    r.peak_source = mfu.peak().source;
  }
  return results;
}

}  // namespace ssmax
