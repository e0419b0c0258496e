// ssmax-gpt recall CHECKPOINT...: the recall task (data.task = mqar) at several context lengths.
#include "cli/commands.h"
#include "cli/option_checks.h"
#include "eval/eval_commands.h"

namespace ssmax {
Command add_recall_command(CLI::App& root) {
  auto* app = root.add_subcommand(
      "recall", "Models trained on the recall task (data.task = mqar) at several context lengths: accuracy, answer "
                "loss and attention on the right pair; a table, recall.json and recall.{png,svg}");
  auto args = std::make_shared<RecallArgs>();
  app->add_option("checkpoints", args->checkpoints, "Checkpoint files or run directories (newest valid checkpoint)")
      ->required();
  app->add_option("--lengths", args->lengths,
                  "Context lengths in tokens, comma-separated (default: 1, 2, 4, 8, 16 × model.block_size, those "
                  "the keys allow); each sequence fills its length with pairs, then the queries")
      ->delimiter(',')
      ->check(decimal_digits());
  app->add_option("--sequences", args->sequences, "Sequences per length")->capture_default_str();
  app->add_option("--batch-size", args->batch_size, "Sequences per forward pass (fewer at long lengths)")
      ->capture_default_str();
  app->add_option("--seed", args->seed, "Seed of the evaluation's sequences")->capture_default_str();
  app->add_option("--rope-theta", args->rope_theta, "RoPE models: evaluate with this base θ");
  app->add_option("--rope-theta-scale", args->rope_theta_scale, "RoPE models: evaluate with θ multiplied by this");
  const auto parse_swap = add_normalizer_swap_options(*app, args->swap);
  app->add_option("--out", args->out_dir, "Output directory (default: <run dir of the first checkpoint>/recall)");
  add_runtime_options(*app, args->runtime);
  return {app, [args, parse_swap] {
            parse_swap();
            return run_recall(*args);
          }};
}

}  // namespace ssmax
