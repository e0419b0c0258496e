// ssmax-gpt train CONFIG [--init-from HF_DIR] | --resume RUN_DIR  [--set key=value ...]: prepares data if needed,
// then trains.
#include <spdlog/spdlog.h>

#include "cli/commands.h"
#include "config/config.h"
#include "export/hf_import_config.h"
#include "train/trainer.h"
#include "util/errors.h"
#include "util/interrupt.h"

namespace ssmax {

Command add_train_command(CLI::App& root) {
  auto* app = root.add_subcommand("train", "Train a GPT from a JSON config (prepares the data first if needed), "
                                           "or continue a run exactly with --resume");
  struct Args {
    std::string config_path, resume, init_from;
    std::vector<std::string> overrides;
    int64_t stop_at = 0;
  };
  auto args = std::make_shared<Args>();
  auto* config_option = app->add_option("config", args->config_path, "JSON config file");
  auto* resume_option = app->add_option(
      "--resume", args->resume,
      "Continue the run in RUN_DIR from its newest valid checkpoint (or from one checkpoint file). "
      "--set may change max_steps, log/eval/checkpoint cadence, LR schedule values, threads and device, or "
      "switch a softmax run to ssmax/ssmax_bias");
  resume_option->type_name("RUN_DIR");
  config_option->excludes(resume_option);
  auto* init_option = app->add_option(
      "--init-from", args->init_from,
      "Start from a Hugging Face Llama checkpoint (LlamaForCausalLM or an ssmax-gpt SSMax export: config.json, "
      "model.safetensors or shards with model.safetensors.index.json, tokenizer.model) instead of random weights: "
      "the model section comes from its config.json (a conflicting key in CONFIG is refused), the data is "
      "tokenized with its tokenizer.model. Same as the config key init_from. With --set "
      "model.attention.normalizer=ssmax --set model.attention.s_init_mode=length the model becomes SSMax with "
      "s·ln(block_size) = 1 (docs/huggingface.md)");
  init_option->type_name("HF_DIR");
  init_option->excludes(resume_option);
  add_set_option(*app, args->overrides);
  app->add_option("--stop-at", args->stop_at,
                  "Stop after this step with a checkpoint (the LR schedule still targets max_steps); "
                  "continue later with --resume")
      ->check(CLI::PositiveNumber);
  return {app, [args] {
            TrainOptions options;
            options.stop_at = args->stop_at;
            TrainSummary summary;
            if (!args->resume.empty()) {
              summary = resume(args->resume, args->overrides, options);
            } else {
              if (args->config_path.empty()) throw UsageError("train: give a CONFIG file, or --resume RUN_DIR");
              auto root = load_config_json(args->config_path, args->overrides);
              if (!args->init_from.empty()) {
                if (root.contains("init_from") && root["init_from"] != args->init_from)
                  throw UsageError("--init-from " + args->init_from + " conflicts with init_from = " +
                                   root["init_from"].dump() + " in " + args->config_path + "; give one");
                root["init_from"] = args->init_from;
              }
              apply_hf_init(root, args->config_path);
              const Config config = config_from_json(root, args->config_path);
              if (!config.init_from.empty()) options.initializer = hf_model_initializer(config.init_from);
              summary = train(config, options);
            }
            if (summary.interrupted)
              return args->stop_at > 0 && summary.steps == args->stop_at ? 0 : InterruptGuard::exit_code();
            spdlog::info("final val loss {:.4f} after {} steps (run directory {})", summary.final_val_loss,
                         summary.steps, summary.run_dir);
            return 0;
          }};
}

}  // namespace ssmax
