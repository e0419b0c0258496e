// ssmax-gpt attention CHECKPOINT... --length L --depth D: how much attention the heads pay to a needle.
#include "cli/commands.h"
#include "cli/option_checks.h"
#include "eval/eval_commands.h"

namespace ssmax {

Command add_attention_command(CLI::App& root) {
  auto* app = root.add_subcommand(
      "attention", "Attention mass of the final query on a needle hidden in held-out text, per layer and head "
                   "(mean over trials): a table with the top heads first, JSON and a layers × heads heatmap");
  auto args = std::make_shared<AttentionArgs>();
  app->add_option("checkpoints", args->checkpoints,
                  "Checkpoint files or run directories (newest valid checkpoint); several are grouped into variants by "
                  "config difference, one heatmap per variant (mean over its seeds)")
      ->required();
  app->add_option("--length", args->length, "Prompt length in tokens (haystack + needle + question)")->required();
  app->add_option("--depth", args->depth, "Needle position in the haystack: 0 = start, 1 = end")
      ->capture_default_str();  // range checked below: CLI::Range lets NaN through
  app->add_option("--trials", args->trials, "Prompts (different haystack, word and number) to average over")
      ->capture_default_str();
  app->add_option("--seed", args->seed, "Seed of the first trial's prompt")
      ->check(decimal_digits())
      ->capture_default_str();
  app->add_option("--out", args->out_dir, "Output directory (default: <run dir>/attention)");
  const auto parse_swap = add_normalizer_swap_options(*app, args->swap);
  add_runtime_options(*app, args->runtime);
  return {app, [args, parse_swap] {
            parse_swap();
            return run_attention(*args);  // which checks its arguments (check_arguments)
          }};
}

}  // namespace ssmax
