// ssmax-gpt train CONFIG [--set key=value ...]: prepares data if needed, then trains.
#include <spdlog/spdlog.h>

#include "cli/commands.h"
#include "config/config.h"
#include "train/trainer.h"

namespace ssmax {

Command add_train_command(CLI::App& root) {
  auto* app = root.add_subcommand("train", "Train a GPT from a JSON config (prepares the data first if needed)");
  auto config_path = std::make_shared<std::string>();
  auto overrides = std::make_shared<std::vector<std::string>>();
  app->add_option("config", *config_path, "JSON config file")->required();
  add_set_option(*app, *overrides);
  return {app, [=] {
            Config config = load_config(*config_path, *overrides);
            TrainSummary summary = train(config);
            spdlog::info("{}: final val loss {:.4f} after {} steps (run directory {})", config.name,
                         summary.final_val_loss, summary.steps, summary.run_dir);
            return 0;
          }};
}

}  // namespace ssmax
