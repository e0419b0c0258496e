// ssmax-gpt generate CHECKPOINT --prompt TEXT: sample a continuation, streamed as it is decoded.
#include "cli/commands.h"
#include "cli/option_checks.h"
#include "eval/eval_commands.h"

namespace ssmax {

Command add_generate_command(CLI::App& root) {
  auto* app = root.add_subcommand("generate", "Continue a prompt with a trained model, printing text as it is "
                                              "generated (KV cache: the prompt is processed once, then one token "
                                              "per step)");
  auto args = std::make_shared<GenerateArgs>();
  app->add_option("checkpoint", args->checkpoint, "Checkpoint file, or a run directory (its newest valid checkpoint)")
      ->required();
  app->add_option("--prompt", args->prompt, "Text to continue")->required();
  app->add_option("--max-new-tokens", args->max_new_tokens,
                  "Tokens to generate (learned-position models stop at model.block_size)")
      ->capture_default_str();
  app->add_option("--temperature", args->temperature, "Sampling temperature; 0 = greedy")->capture_default_str();
  app->add_option("--top-k", args->top_k, "Sample among the k most likely tokens; 0 = all")->capture_default_str();
  app->add_option("--seed", args->seed, "Sampling seed")->check(decimal_digits())->capture_default_str();
  app->add_option("--dump", args->dump_path,
                  "Also write a JSON file with the prompt's token ids, the generated ids and the logits of one "
                  "forward pass over the prompt ([prompt tokens][vocab]): for checking an exported model "
                  "(docs/huggingface.md)");
  const auto parse_swap = add_normalizer_swap_options(*app, args->swap);
  add_runtime_options(*app, args->runtime);
  return {app, [app, args, parse_swap] {
            parse_swap();
            // The rest of the arguments run_generate checks (check_arguments); whether --top-k was given only the
            // command line knows.
            if (args->temperature == 0 && given(*app, "--top-k"))
              throw UsageError("--top-k " + std::to_string(args->top_k) +
                               " has no effect with --temperature 0 (greedy decoding takes the most likely token); "
                               "give a temperature > 0 to sample, or drop --top-k");
            return run_generate(*args);
          }};
}

}  // namespace ssmax
