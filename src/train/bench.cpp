#include "train/bench.h"

#include <torch/torch.h>

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <limits>
#include <optional>
#include <random>
#include <utility>

#include "data/document_index.h"
#include "data/loader.h"
#include "data/token_stream.h"
#include "kernels/gemm.h"
#include "model/gpt.h"
#include "train/cpu_blas.h"
#include "train/device_memory.h"
#include "train/op_profile.h"
#include "train/optimizer.h"
#include "train/peak_flops.h"
#include "train/precision.h"
#include "train/session.h"
#include "util/system_info.h"

namespace ssmax {
namespace {

// A shard of random tokens in a temporary directory, removed again: what the bench's data loader reads; with
// document_tokens > 0 also a document index of documents of 1 … 2·document_tokens−1 tokens.
class SyntheticTokens {
 public:
  SyntheticTokens(uint32_t vocab_size, size_t count, uint64_t seed, int64_t document_tokens)
      : dir_(std::filesystem::temp_directory_path() / ("ssmax-bench-" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(dir_);
    ShardedWriter writer(dir_.string(), "train", vocab_size, count);
    std::mt19937_64 random(seed);
    std::vector<uint32_t> ids(count);
    for (auto& id : ids) id = static_cast<uint32_t>(random() % vocab_size);
    writer.append(ids);
    std::vector<std::string> paths;
    for (const auto& name : writer.finish()) paths.push_back((dir_ / name).string());
    stream_.emplace(TokenStream::open(paths));
    if (document_tokens <= 0) return;
    std::vector<uint64_t> starts;
    for (uint64_t start = 0; start < count; start += 1 + random() % (2 * document_tokens - 1)) starts.push_back(start);
    const std::string index = (dir_ / "train-documents.bin").string();
    DocumentIndex::write(index, starts, count);
    documents_.emplace(DocumentIndex::open(index, count));
  }
  ~SyntheticTokens() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  const TokenStream& stream() const { return *stream_; }
  const DocumentIndex* documents() const { return documents_ ? &*documents_ : nullptr; }

 private:
  std::filesystem::path dir_;
  std::optional<TokenStream> stream_;
  std::optional<DocumentIndex> documents_;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

std::vector<BenchResult> bench_normalizers(const Config& config, const std::vector<Normalizer>& normalizers,
                                           const BenchOptions& options) {
  const int steps = options.steps, warmup = options.warmup;
  at::set_num_threads(config.threads > 0 ? config.threads : hardware_threads());
  const torch::Device device = resolve_device(config.device);
  configure_precision(config.train, device);
  if (device.is_cpu())
    choose_cpu_blas(config.cpu_blas, config.model, config.data.tokenizer.vocab_size,
                    static_cast<int64_t>(config.train.batch_size) * config.model.block_size);
  const bool bf16 = uses_bf16(config.train);
  const int accum = config.train.grad_accum_steps;
  const double clip = config.optim.grad_clip > 0 ? config.optim.grad_clip : std::numeric_limits<double>::infinity();
  const int64_t B = config.train.batch_size, T = config.model.block_size, V = config.data.tokenizer.vocab_size;
  struct Contender {
    GPT model{nullptr};
    std::unique_ptr<torch::optim::AdamW> optimizer;
    std::vector<double> seconds, data, forward, backward, optimizer_seconds;
    double peak_bytes = 0;
  };
  std::vector<Contender> contenders(normalizers.size());
  for (size_t i = 0; i < normalizers.size(); ++i) {
    ModelConfig m = config.model;
    m.attention.normalizer = normalizers[i];
    torch::manual_seed(config.seed);
    contenders[i].model = GPT(GPTOptions{m, V});
    contenders[i].model->to(device);
    contenders[i].optimizer = make_optimizer(*contenders[i].model, config.optim);
  }
  const SyntheticTokens tokens(static_cast<uint32_t>(V), std::max<size_t>(1 << 20, 4 * B * (T + 1)), config.seed,
                               options.document_tokens);
  const BatchLoader loader(tokens.stream(), T, B, config.seed, tokens.documents());
  std::unique_ptr<OperatorProfile> profile;
  for (int round = 0; round < warmup + steps; ++round) {
    if (round == warmup && !options.profile_path.empty()) profile = std::make_unique<OperatorProfile>();
    for (auto& c : contenders) {
      if (device.is_cuda()) torch::cuda::synchronize();
      reset_peak_device_memory(device);
      const auto start = std::chrono::steady_clock::now();
      // Seconds since `mark`, which moves to now: the parts of one step.
      auto mark = start;
      auto lap = [&] {
        if (device.is_cuda()) torch::cuda::synchronize();
        const auto now = std::chrono::steady_clock::now();
        return std::chrono::duration<double>(now - std::exchange(mark, now)).count();
      };
      double data_s = 0, forward_s = 0, backward_s = 0;
      c.optimizer->zero_grad();
      for (int micro = 0; micro < accum; ++micro) {
        auto [inputs, targets, positions] = loader.train_batch(round, micro);
        const auto x = inputs.to(device), y = targets.to(device);
        const auto p = positions.defined() ? positions.to(device) : positions;
        data_s += lap();
        torch::Tensor loss;
        {
          AutocastScope autocast(device, bf16);
          loss = c.model->loss(x, y, p) / accum;
        }
        forward_s += lap();
        loss.backward();
        backward_s += lap();
      }
      clip_grad_norm(c.model->parameters(), clip);
      c.optimizer->step();
      const double optimizer_s = lap();
      c.peak_bytes = std::max(c.peak_bytes, peak_device_memory(device));
      if (round >= warmup) {
        c.seconds.push_back(std::chrono::duration<double>(mark - start).count());
        c.data.push_back(data_s);
        c.forward.push_back(forward_s);
        c.backward.push_back(backward_s);
        c.optimizer_seconds.push_back(optimizer_s);
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
    r.optimizer_s = median(contenders[i].optimizer_seconds);
    r.tokens_per_s = static_cast<double>(B) * T * accum / r.median_step_s;
    r.parameters = contenders[i].model->num_parameters();
    r.flops_per_token = contenders[i].model->flops_per_token(T);
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
