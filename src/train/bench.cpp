#include "train/bench.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <limits>

#include "model/gpt.h"
#include "train/device_memory.h"
#include "train/optimizer.h"
#include "train/precision.h"
#include "train/session.h"
#include "util/system_info.h"

namespace ssmax {

std::vector<BenchResult> bench_normalizers(const Config& config, const std::vector<Normalizer>& normalizers, int steps,
                                           int warmup) {
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
    std::vector<double> seconds;
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
      c.optimizer->zero_grad();
      for (int micro = 0; micro < accum; ++micro) {
        torch::Tensor loss;
        {
          AutocastScope autocast(device, bf16);
          loss = c.model->loss(x, y) / accum;
        }
        loss.backward();
      }
      torch::nn::utils::clip_grad_norm_(c.model->parameters(), clip);
      c.optimizer->step();
      if (device.is_cuda()) torch::cuda::synchronize();
      c.peak_bytes = std::max(c.peak_bytes, peak_device_memory(device));
      if (round >= warmup)
        c.seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
  }
  std::vector<BenchResult> results;
  for (size_t i = 0; i < normalizers.size(); ++i) {
    auto& s = contenders[i].seconds;
    std::sort(s.begin(), s.end());
    BenchResult r;
    r.normalizer = normalizers[i];
    r.median_step_s = s[s.size() / 2];
    r.tokens_per_s = static_cast<double>(B) * T * accum / r.median_step_s;
    r.parameters = contenders[i].model->num_parameters();
    r.flops_per_token = contenders[i].model->flops_per_token(T);
    r.peak_device_bytes = contenders[i].peak_bytes;
    results.push_back(r);
  }
  return results;
}

}  // namespace ssmax
