#include "train/bench.h"

#include <torch/torch.h>

#include <spdlog/spdlog.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
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
#include "util/arg_checks.h"
#include "util/errors.h"
#include "util/system_info.h"
#include "util/text.h"

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

void check_arguments(const BenchArgs& args) {
  check_number("--steps", args.bench.steps, 1);
  check_number("--warmup", args.bench.warmup, 0);
  check_number("--peak-tflops", args.bench.peak_tflops, 0);
  check_number("--document-tokens", static_cast<double>(args.bench.document_tokens), 0);
  if (args.normalizers.empty())
    throw UsageError("--normalizers: give at least one of " + join(normalizer_names(), ", "));
  for (const auto& name : args.normalizers) parse_normalizer(name, "--normalizers:");
  check_distinct("--normalizers", args.normalizers, false);
  const std::string& profile = args.bench.profile_path;
  if (profile.empty()) return;
  namespace fs = std::filesystem;
  std::error_code error;
  if (fs::is_directory(profile)) throw UsageError("--profile " + profile + ": is a directory");
  if (fs::equivalent(profile, args.config_path, error))
    throw UsageError("--profile " + profile + ": would overwrite the config");
  const fs::path parent = fs::path(profile).parent_path();
  if (!parent.empty() && !fs::is_directory(parent))
    throw UsageError("--profile " + profile + ": directory " + parent.string() + " does not exist");
}

int run_bench(const BenchArgs& args) {
  check_arguments(args);
  Config config = load_config(args.config_path, args.overrides);
  std::vector<Normalizer> normalizers;
  for (const auto& name : args.normalizers) normalizers.push_back(parse_normalizer(name, "--normalizers:"));
  spdlog::info("bench {}: batch {} × {} tokens, {} timed steps each after {} warm-up{}", args.config_path,
               config.train.batch_size, config.model.block_size, args.bench.steps, args.bench.warmup,
               args.bench.document_tokens > 0
                   ? fmt::format(", documents of ~{} tokens (document_mask {})", args.bench.document_tokens,
                                 config.model.attention.document_mask)
                   : "");
  const auto results = bench_normalizers(config, normalizers, args.bench);
  for (const auto& r : results) {
    nlohmann::json line = {
        {"normalizer", normalizer_name(r.normalizer)},
        {"params", r.parameters},
        {"median_step_s", r.median_step_s},
        {"tokens_per_s", r.tokens_per_s},
        {"overhead_vs_" + normalizer_name(results[0].normalizer), r.median_step_s / results[0].median_step_s - 1.0},
        {"precision", config.train.precision},
        {"document_mask", config.model.attention.document_mask},
        {"document_tokens", args.bench.document_tokens},
        {"flops_per_token", r.flops_per_token},
        {"model_tflops", r.flops_per_token * r.tokens_per_s / 1e12},
        {"data_ms", 1000 * r.data_s},
        {"forward_ms", 1000 * r.forward_s},
        {"backward_ms", 1000 * r.backward_s},
        {"optimizer_ms", 1000 * r.optimizer_s},
        {"peak_rss_mb", r.peak_rss_mb},
        {"peak_tflops", r.peak_tflops},
        {"peak_source", r.peak_source}};
    if (r.mfu > 0) line["mfu"] = r.mfu;
    if (!r.cpu_blas.empty()) line["cpu_blas"] = r.cpu_blas;
    if (r.peak_device_bytes > 0) line["peak_device_gib"] = r.peak_device_bytes / (1 << 30);
    std::printf("%s\n", line.dump().c_str());
  }
  return 0;
}

}  // namespace ssmax
