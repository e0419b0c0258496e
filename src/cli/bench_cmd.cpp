// ssmax-gpt bench CONFIG: training-step speed per normalizer on random tokens.
#include "cli/commands.h"
#include "cli/option_checks.h"
#include "train/bench.h"
#include "util/errors.h"

namespace ssmax {

Command add_bench_command(CLI::App& root) {
  auto* app = root.add_subcommand(
      "bench", "Time training steps of a config on random tokens for each normalizer, interleaved; prints one JSON "
               "line per normalizer and the overhead relative to the first");
  auto args = std::make_shared<BenchArgs>();
  app->add_option("config", args->config_path, "JSON config file")->required();
  app->add_option("--normalizers", args->normalizers, "Comma-separated normalizers to compare")
      ->delimiter(',')
      ->capture_default_str();
  app->add_option("--steps", args->bench.steps, "Timed steps per normalizer")->capture_default_str();
  app->add_option("--warmup", args->bench.warmup, "Untimed steps first")->capture_default_str();
  app->add_option("--peak-tflops", args->bench.peak_tflops,
                  "The device's peak TFLOP/s for model-FLOPs utilisation (e.g. 989 for an H200, dense bf16); "
                  "0: measured on the CPU (once per machine, then cached), from a table of known GPUs on CUDA");
  app->add_option("--profile", args->bench.profile_path,
                  "Profile the timed steps with LibTorch's profiler: write a Chrome trace (chrome://tracing, Perfetto) "
                  "to this file and log the operators that take the most time")
      ->type_name("TRACE.json");
  app->add_option("--document-tokens", args->bench.document_tokens,
                  "Synthetic documents of 1 … 2N−1 tokens (mean N) instead of one long text: with --set "
                  "model.attention.document_mask=true, the cost of keeping attention inside documents");
  add_set_option(*app, args->overrides);
  return {app, [app, args] {
            // Given but empty would mean "no profile": refused here, where "given" is known; the rest run_bench checks.
            if (given(*app, "--profile") && args->bench.profile_path.empty())
              throw UsageError("--profile: empty path; give a file for the trace");
            return run_bench(*args);
          }};
}

}  // namespace ssmax
