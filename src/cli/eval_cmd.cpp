// ssmax-gpt eval CHECKPOINT...: loss by position at several context lengths (length generalisation).
#include "cli/commands.h"
#include "cli/option_checks.h"
#include "eval/eval_commands.h"
#include "util/errors.h"

namespace ssmax {
Command add_eval_command(CLI::App& root) {
  auto* app = root.add_subcommand(
      "eval", "Validation loss by position at several context lengths, for one or more checkpoints: a table "
              "(overall and per position bin [p, 2p)), eval.json and eval_loss.{png,svg} (loss vs position, log x)");
  auto args = std::make_shared<LengthEvalArgs>();
  app->add_option("checkpoints", args->checkpoints, "Checkpoint files or run directories (newest valid checkpoint)")
      ->required();
  app->add_option("--text", args->text_file,
                  "Evaluate on this text file (tokenized with each checkpoint's tokenizer) instead of the run's "
                  "validation split");
  app->add_option("--lengths", args->lengths,
                  "Context lengths, comma-separated; learned-position models allow "
                  "only lengths <= model.block_size")
      ->delimiter(',')
      ->check(decimal_digits())
      ->capture_default_str();
  app->add_option("--rope-theta", args->rope_theta, "RoPE models: evaluate with this base θ");
  app->add_option("--rope-theta-scale", args->rope_theta_scale, "RoPE models: evaluate with θ multiplied by this");
  const auto parse_swap = add_normalizer_swap_options(*app, args->swap);
  app->add_option("--batches", args->windows,
                  "Windows of length+1 tokens evaluated per length (non-overlapping, "
                  "spread over the text)")
      ->capture_default_str();
  app->add_option("--out", args->out_dir, "Output directory (default: <run dir of the first checkpoint>/eval)");
  add_runtime_options(*app, args->runtime);
  return {app, [app, args, parse_swap] {
            parse_swap();
            // The rest of the arguments run_length_eval checks (check_arguments). Given but empty, --text would mean
            // "not given": the validation split, a plausible wrong number.
            if (given(*app, "--text") && args->text_file.empty())
              throw UsageError("--text: empty path; give a text file, or leave --text out for the validation split");
            return run_length_eval(*args);
          }};
}

}  // namespace ssmax
