#include "train/bench.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>

#include "model/gpt.h"
#include "train/optimizer.h"
#include "train/session.h"
#include "util/system_info.h"

namespace ssmax {

std::vector<BenchResult> bench_normalizers(const Config& config, const std::vector<std::string>& normalizers,
                                           int steps, int warmup) {
  at::set_num_threads(config.threads > 0 ? config.threads : hardware_threads());
  const torch::Device device = resolve_device(config.device);
  const int64_t B = config.train.batch_size, T = config.model.block_size, V = config.data.tokenizer.vocab_size;
  struct Contender {
    GPT model{nullptr};
    std::unique_ptr<torch::optim::AdamW> optimizer;
    std::vector<double> seconds;
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
      const auto start = std::chrono::steady_clock::now();
      c.optimizer->zero_grad();
      c.model->loss(x, y).backward();
      torch::nn::utils::clip_grad_norm_(c.model->parameters(), 1.0);
      c.optimizer->step();
      if (device.is_cuda()) torch::cuda::synchronize();
      if (round >= warmup) c.seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
  }
  std::vector<BenchResult> results;
  for (size_t i = 0; i < normalizers.size(); ++i) {
    auto& s = contenders[i].seconds;
    std::sort(s.begin(), s.end());
    BenchResult r;
    r.normalizer = normalizers[i];
    r.median_step_s = s[s.size() / 2];
    r.tokens_per_s = B * T / r.median_step_s;
    r.parameters = contenders[i].model->num_parameters();
    results.push_back(r);
  }
  return results;
}

}  // namespace ssmax
