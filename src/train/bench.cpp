#include "train/bench.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <utility>

#include "model/gpt.h"
#include "train/device_memory.h"
#include "train/optimizer.h"
#include "train/peak_flops.h"
#include "train/precision.h"
#include "train/session.h"
#include "util/system_info.h"

namespace ssmax {

std::vector<BenchResult> bench_normalizers(const Config& config, const std::vector<Normalizer>& normalizers, int steps,
                                           int warmup, double peak_tflops) {
  at::set_num_threads(config.threads > 0 ? config.threads : hardware_threads());
  const torch::Device device = resolve_device(config.device);
  configure_precision(config.train, device);
  const bool bf16 = uses_bf16(config.train);
  const int accum = config.train.grad_accum_steps;
  const double clip = config.optim.grad_clip > 0 ? config.optim.grad_clip : std::numeric_limits<double>::infinity();
  const int64_t B = config.train.batch_size, T = config.model.block_size, V = config.data.tokenizer.vocab_size;
  struct Contender {
    GPT model{nullptr};
    std::unique_ptr<torch::optim::AdamW> optimizer;
    std::vector<double> seconds, forward, backward, optimizer_seconds;
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
  torch::manual_seed(config.seed);
  auto x = torch::randint(0, V, {B, T}, torch::kLong).to(device);
  auto y = torch::randint(0, V, {B, T}, torch::kLong).to(device);
  for (int round = 0; round < warmup + steps; ++round) {
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
      double forward_s = 0, backward_s = 0;
      c.optimizer->zero_grad();
      for (int micro = 0; micro < accum; ++micro) {
        torch::Tensor loss;
        {
          AutocastScope autocast(device, bf16);
          loss = c.model->loss(x, y) / accum;
        }
        forward_s += lap();
        loss.backward();
        backward_s += lap();
      }
      torch::nn::utils::clip_grad_norm_(c.model->parameters(), clip);
      c.optimizer->step();
      const double optimizer_s = lap();
      c.peak_bytes = std::max(c.peak_bytes, peak_device_memory(device));
      if (round >= warmup) {
        c.seconds.push_back(std::chrono::duration<double>(mark - start).count());
        c.forward.push_back(forward_s);
        c.backward.push_back(backward_s);
        c.optimizer_seconds.push_back(optimizer_s);
      }
    }
  }
  const PeakFlops peak = peak_tflops > 0 ? PeakFlops{peak_tflops, "given"} : device_peak_flops(device);
  std::vector<BenchResult> results;
  for (size_t i = 0; i < normalizers.size(); ++i) {
    auto median = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      return v[v.size() / 2];
    };
    BenchResult r;
    r.normalizer = normalizers[i];
    r.median_step_s = median(contenders[i].seconds);
    r.forward_s = median(contenders[i].forward);
    r.backward_s = median(contenders[i].backward);
    r.optimizer_s = median(contenders[i].optimizer_seconds);
    r.tokens_per_s = static_cast<double>(B) * T * accum / r.median_step_s;
    r.parameters = contenders[i].model->num_parameters();
    r.flops_per_token = contenders[i].model->flops_per_token(T);
    r.peak_device_bytes = contenders[i].peak_bytes;
    r.peak_rss_mb = peak_rss_mb();
    r.peak_tflops = peak.tflops;
    r.peak_source = peak.source;
    results.push_back(r);
  }
  return results;
}

}  // namespace ssmax
