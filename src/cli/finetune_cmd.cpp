// ssmax-gpt finetune CHECKPOINT --task needle: retrieval finetuning in a run directory of its own.
#include "cli/commands.h"
#include "eval/eval_commands.h"

namespace ssmax {

Command add_finetune_command(CLI::App& root) {
  auto* app = root.add_subcommand(
      "finetune", "Finetune a checkpoint on needle retrieval (loss on the answer tokens only; haystacks from the "
                  "training split) into its own run directory, default <run>-ft-needle. Defaults on top of the "
                  "source config: train.max_steps=200, optim.lr=3e-4, min_lr=3e-5, warmup_steps=20, eval_every=50, "
                  "checkpoint_every=100; --set changes any of them. Running the same command again resumes.");
  auto args = std::make_shared<FinetuneArgs>();
  app->add_option("checkpoint", args->checkpoint, "Checkpoint file, or a run directory (its newest valid checkpoint)")
      ->required();
  app->add_option("--task", args->task, "What to finetune on")->check(CLI::IsMember({"needle"}))->capture_default_str();
  app->add_option("--lengths", args->lengths, "Prompt lengths in tokens, comma-separated, used in turn")
      ->delimiter(',')
      ->capture_default_str();
  add_set_option(*app, args->overrides);
  app->add_option("--stop-at", args->stop_at, "Stop after this step with a checkpoint");
  return {app, [args] { return run_finetune(*args); }};
}

}  // namespace ssmax
