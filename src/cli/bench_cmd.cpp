// ssmax-gpt bench CONFIG: training-step speed per normalizer on random tokens.
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include <filesystem>

#include "cli/commands.h"
#include "cli/option_checks.h"
#include "config/config.h"
#include "train/bench.h"
#include "util/errors.h"
#include "util/text.h"

namespace ssmax {

Command add_bench_command(CLI::App& root) {
  auto* app = root.add_subcommand(
      "bench", "Time training steps of a config on random tokens for each normalizer, interleaved; prints one JSON "
               "line per normalizer and the overhead relative to the first");
  struct Args {
    std::string config_path, normalizers = "softmax,ssmax,ssmax_bias";
    std::vector<std::string> overrides;
    BenchOptions bench;
  };
  auto args = std::make_shared<Args>();
  app->add_option("config", args->config_path, "JSON config file")->required();
  app->add_option("--normalizers", args->normalizers, "Comma-separated normalizers to compare")->capture_default_str();
  app->add_option("--steps", args->bench.steps, "Timed steps per normalizer")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--warmup", args->bench.warmup, "Untimed steps first")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app->add_option("--peak-tflops", args->bench.peak_tflops,
                  "The device's peak TFLOP/s for model-FLOPs utilisation (e.g. 989 for an H200, dense bf16); "
                  "0: measured on the CPU (once per machine, then cached), from a table of known GPUs on CUDA")
      ->check(CLI::NonNegativeNumber);
  app->add_option("--profile", args->bench.profile_path,
                  "Profile the timed steps with LibTorch's profiler: write a Chrome trace (chrome://tracing, Perfetto) "
                  "to this file and log the operators that take the most time")
      ->type_name("TRACE.json");
  app->add_option("--document-tokens", args->bench.document_tokens,
                  "Synthetic documents of 1 … 2N−1 tokens (mean N) instead of one long text: with --set "
                  "model.attention.document_mask=true, the cost of keeping attention inside documents")
      ->check(CLI::PositiveNumber);
  add_set_option(*app, args->overrides);
  return {app, [app, args] {
            check_number("--peak-tflops", args->bench.peak_tflops, 0);
            if (given(*app, "--profile")) {
              namespace fs = std::filesystem;
              const std::string& profile = args->bench.profile_path;
              std::error_code error;
              if (profile.empty()) throw UsageError("--profile: empty path; give a file for the trace");
              if (fs::is_directory(profile)) throw UsageError("--profile " + profile + ": is a directory");
              if (fs::equivalent(profile, args->config_path, error))
                throw UsageError("--profile " + profile + ": would overwrite the config");
              const fs::path parent = fs::path(profile).parent_path();
              if (!parent.empty() && !fs::is_directory(parent))
                throw UsageError("--profile " + profile + ": directory " + parent.string() + " does not exist");
            }
            Config config = load_config(args->config_path, args->overrides);
            std::vector<Normalizer> names;
            for (const auto& name : split_list(args->normalizers))
              names.push_back(parse_normalizer(name, "--normalizers:"));
            if (names.empty()) throw UsageError("--normalizers: give at least one of softmax, ssmax, ssmax_bias");
            spdlog::info("bench {}: batch {} × {} tokens, {} timed steps each after {} warm-up{}", args->config_path,
                         config.train.batch_size, config.model.block_size, args->bench.steps, args->bench.warmup,
                         args->bench.document_tokens > 0
                             ? fmt::format(", documents of ~{} tokens (document_mask {})", args->bench.document_tokens,
                                           config.model.attention.document_mask)
                             : "");
            auto results = bench_normalizers(config, names, args->bench);
            for (const auto& r : results) {
              nlohmann::json line = {{"normalizer", normalizer_name(r.normalizer)},
                                     {"params", r.parameters},
                                     {"median_step_s", r.median_step_s},
                                     {"tokens_per_s", r.tokens_per_s},
                                     {"overhead_vs_" + normalizer_name(results[0].normalizer),
                                      r.median_step_s / results[0].median_step_s - 1.0},
                                     {"precision", config.train.precision},
                                     {"document_mask", config.model.attention.document_mask},
                                     {"document_tokens", args->bench.document_tokens},
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
          }};
}

}  // namespace ssmax
