// ssmax-gpt export CHECKPOINT --out model.safetensors: weights for PyTorch/safetensors users;
// ssmax-gpt export CHECKPOINT --format hf --out DIR: a Hugging Face model directory (docs/huggingface.md).
#include <spdlog/spdlog.h>

#include "cli/commands.h"
#include "cli/option_checks.h"
#include "export/export_model.h"
#include "export/hf_export.h"
#include "util/errors.h"

namespace ssmax {

Command add_export_command(CLI::App& root) {
  auto* app = root.add_subcommand(
      "export",
      "Write a checkpoint's weights for other tools. --format safetensors (default): one .safetensors file with "
      "ssmax-gpt's tensor names, the model config as JSON beside it (<stem>.config.json). --format hf: a Hugging Face "
      "model directory (config.json, model.safetensors, generation_config.json, tokenizer) that transformers 4.57.6 "
      "loads with AutoModelForCausalLM / AutoTokenizer.from_pretrained(DIR): softmax models as LlamaForCausalLM "
      "(position=rope, norm=rmsnorm, mlp=swiglu) or GPT2LMHeadModel (position=learned, norm=layernorm, mlp=gelu, "
      "tied embeddings) with no custom code; SSMax models with their modeling code in DIR (trust_remote_code=True). "
      "See docs/huggingface.md");
  struct Args {
    std::string checkpoint, out, format = "safetensors", dtype = "f32";
    bool force = false;
  };
  auto args = std::make_shared<Args>();
  app->add_option("checkpoint", args->checkpoint, "Checkpoint file, or a run directory (its newest valid checkpoint)")
      ->required();
  app->add_option("--out", args->out, "safetensors: output file, ending in .safetensors; hf: output directory")
      ->required();
  app->add_option("--format", args->format, "safetensors | hf")->capture_default_str();
  app->add_option("--dtype", args->dtype, "hf: weights as f32 | bf16")->capture_default_str();
  app->add_flag("--force", args->force,
                "Replace existing output files (hf: an earlier export in --out; any other non-empty directory is "
                "refused)");
  return {app, [app, args] {
            if (args->format == "hf") {
              auto result = export_hf({args->checkpoint, args->out, args->dtype, args->force});
              spdlog::info("exported {} (step {}) as {} ({} tensors, {}) to {}{}", result.checkpoint, result.step,
                           result.architecture, result.tensors, args->dtype, result.out_dir,
                           result.custom_code ? "; load it with trust_remote_code=True" : "");
              return 0;
            }
            if (args->format != "safetensors")
              throw UsageError("--format " + args->format + ": must be safetensors or hf");
            if (given(*app, "--dtype"))
              throw UsageError("--dtype " + args->dtype + ": only with --format hf (safetensors writes float32)");
            auto result = export_checkpoint(args->checkpoint, args->out, args->force);
            spdlog::info("exported {} tensors of {} (step {}) to {} and {}", result.tensors, result.checkpoint,
                         result.step, result.weights_path, result.config_path);
            return 0;
          }};
}

}  // namespace ssmax
