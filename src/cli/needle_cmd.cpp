// ssmax-gpt needle CHECKPOINT... : needle-in-a-haystack retrieval by context length and depth.
#include "cli/commands.h"
#include "cli/option_checks.h"
#include "eval/eval_commands.h"
#include "util/errors.h"

namespace ssmax {

Command add_needle_command(CLI::App& root) {
  auto* app = root.add_subcommand(
      "needle", "Needle in a haystack: hide \"The special magic <word> number is: <7 digits>.\" in held-out text, "
                "ask for it, decode greedily; exact match and digit accuracy by length × depth (table, needle.json "
                "and a heatmap per checkpoint)");
  auto args = std::make_shared<NeedleArgs>();
  app->add_option("checkpoints", args->checkpoints, "Checkpoint files or run directories (newest valid checkpoint)")
      ->required();
  app->add_option("--lengths", args->lengths, "Prompt lengths in tokens, comma-separated")
      ->delimiter(',')
      ->check(decimal_digits())
      ->capture_default_str();
  app->add_option("--depths", args->depths, "Needle depths in [0, 1], comma-separated (0 = start, 1 = end)")
      ->delimiter(',')
      ->capture_default_str();
  app->add_option("--trials", args->trials, "Prompts per length and depth (same needles at every cell)")
      ->capture_default_str();
  app->add_option("--max-new-tokens", args->max_new_tokens, "Tokens decoded for the answer")->capture_default_str();
  app->add_option("--seed", args->seed, "Seed of the first trial's prompt")
      ->check(decimal_digits())
      ->capture_default_str();
  app->add_flag("--show-prompts", args->show_prompts, "Print each cell's first prompt and its answer to stderr");
  app->add_option("--out", args->out_dir, "Output directory (default: <run dir of the first checkpoint>/needle)");
  const auto parse_swap = add_normalizer_swap_options(*app, args->swap);
  add_runtime_options(*app, args->runtime);
  return {app, [args, parse_swap] {
            parse_swap();
            return run_needle(*args);  // which checks its arguments (check_arguments)
          }};
}

}  // namespace ssmax
