#pragma once
// `bench`: training-step speed of a config on synthetic tokens, per normalizer, measured side by side.
// Torch-free header.
#include <string>
#include <vector>

#include "config/config.h"

namespace ssmax {

struct BenchResult {
  Normalizer normalizer = Normalizer::Softmax;
  double median_step_s = 0;
  double tokens_per_s = 0;
  int64_t parameters = 0;
  double flops_per_token = 0;    // GPTImpl::flops_per_token at block_size
  double peak_device_bytes = 0;  // CUDA: peak memory allocated by the caching allocator; 0 on CPU
  // Medians of the parts of a step (train/train_step.h): the data loader's batches (to the device; prefetched during
  // the previous backward pass, as in training), forward passes (with the loss), backward passes, clip + AdamW. On
  // CUDA each part ends with a synchronisation.
  double data_s = 0, forward_s = 0, backward_s = 0, optimizer_s = 0;
  double peak_tflops = 0;  // of the device, for model-FLOPs utilisation (train/peak_flops.h); 0: unknown
  std::string peak_source;
  double mfu = 0;          // model FLOPs per second ÷ peak, at most 1; 0: unknown
  std::string cpu_blas;    // the library that ran the CPU's float32 products (kernels/gemm.h); empty on CUDA
  double peak_rss_mb = 0;  // of this process when the contender's steps were done (all contenders so far)
};

struct BenchOptions {
  int steps = 10;            // timed steps per normalizer
  int warmup = 2;            // untimed rounds first
  double peak_tflops = 0;    // > 0 replaces the device's peak (device_peak_flops)
  std::string profile_path;  // not empty: profile the timed steps, write a Chrome trace there, log the top operators
  // > 0: the synthetic tokens form documents of 1 … 2·document_tokens−1 tokens (uniform), whose positions reach the
  // model: with model.attention.document_mask, the cost of masking
  int64_t document_tokens = 0;
};

// Builds one session per normalizer (same seed) as a run does and times the training step a run takes (TrainStep:
// batches from the data loader with its prefetch, forward, backward, clip, AdamW), interleaved round by round so
// drift in machine speed hits all alike. The loader reads a temporary shard of random tokens (vocabulary:
// data.tokenizer.vocab_size), so no dataset is needed and the data time is the real loader's. Honours
// train.grad_accum_steps (micro-batches per step), train.precision, train.tf32 and optim.grad_clip.
std::vector<BenchResult> bench_normalizers(const Config& config, const std::vector<Normalizer>& normalizers,
                                           const BenchOptions& options);

// The command's arguments: `bench CONFIG [--normalizers a,b,…] [--steps N] [--warmup N] [--peak-tflops X]
// [--profile TRACE.json] [--document-tokens N] [--set …]`.
struct BenchArgs {
  std::string config_path;
  std::vector<std::string> normalizers{"softmax", "ssmax", "ssmax_bias"};
  std::vector<std::string> overrides;  // --set KEY=VALUE
  BenchOptions bench;
};
// The one check before any work: the counts, the peak, the normalizers by name (config/normalizer_kind.h), and a
// --profile path that is not a directory, not the config, in a directory that exists. UsageError naming the option.
void check_arguments(const BenchArgs& args);
// Checks, benches, and prints one JSON line per normalizer. Returns the exit code.
int run_bench(const BenchArgs& args);

}  // namespace ssmax
