// ssmax-gpt export CHECKPOINT --out model.safetensors: weights for PyTorch/safetensors users.
#include <spdlog/spdlog.h>

#include "cli/commands.h"
#include "export/export_model.h"

namespace ssmax {

Command add_export_command(CLI::App& root) {
  auto* app = root.add_subcommand("export", "Write a checkpoint's weights as safetensors, with the model config as "
                                            "JSON beside it (<stem>.config.json)");
  struct Args {
    std::string checkpoint, out;
    bool force = false;
  };
  auto args = std::make_shared<Args>();
  app->add_option("checkpoint", args->checkpoint, "Checkpoint file, or a run directory (its newest valid checkpoint)")
      ->required();
  app->add_option("--out", args->out, "Output file, ending in .safetensors")->required();
  app->add_flag("--force", args->force, "Replace existing output files");
  return {app, [args] {
            auto result = export_checkpoint(args->checkpoint, args->out, args->force);
            spdlog::info("exported {} tensors of {} (step {}) to {} and {}", result.tensors, result.checkpoint,
                         result.step, result.weights_path, result.config_path);
            return 0;
          }};
}

}  // namespace ssmax
