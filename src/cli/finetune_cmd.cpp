// ssmax-gpt finetune CHECKPOINT --task needle|repeat: retrieval finetuning in a run directory of its own.
#include "cli/commands.h"
#include "train/finetune.h"

namespace ssmax {

Command add_finetune_command(CLI::App& root) {
  auto* app = root.add_subcommand(
      "finetune",
      "Finetune a checkpoint into its own run directory (default <run>-ft-<task>). --task needle: needle prompts "
      "from the training split, loss on the answer tokens; --task repeat: a window of training text followed by "
      "the same window, loss on the second copy (grows the induction heads that retrieval needs). --lm-weight adds "
      "the language-model loss on the rest. Defaults on top of the source config: train.max_steps=200, "
      "optim.lr=3e-4, min_lr=3e-5, warmup_steps=20, eval_every=50, checkpoint_every=100; --set changes any of "
      "them. Running the same command again resumes.");
  auto args = std::make_shared<FinetuneArgs>();
  app->add_option("checkpoint", args->checkpoint, "Checkpoint file, or a run directory (its newest valid checkpoint)")
      ->required();
  app->add_option("--task", args->task, "needle or repeat")->capture_default_str();
  app->add_option("--lengths", args->lengths,
                  "Sequence lengths in tokens (needle: the prompt), comma-separated, "
                  "used in turn step by step")
      ->delimiter(',')
      ->capture_default_str();
  app->add_option("--lm-weight", args->lm_weight,
                  "Adds this times the next-token loss on the prompt (needle) or first copy (repeat) to the "
                  "task's loss (0: task tokens only; > 0 keeps the model a language model)")
      ->capture_default_str();
  add_set_option(*app, args->overrides);
  app->add_option("--stop-at", args->stop_at, "Stop after this step with a checkpoint")->check(CLI::PositiveNumber);
  return {app, [args] { return run_finetune(*args); }};  // which checks its arguments (check_arguments)
}

}  // namespace ssmax
