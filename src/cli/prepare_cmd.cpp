// ssmax-gpt prepare CONFIG: tokenizer + token shards, cached.
#include <spdlog/spdlog.h>

#include "cli/commands.h"
#include "config/config.h"
#include "data/prepare.h"

namespace ssmax {

Command add_prepare_command(CLI::App& root) {
  auto* app =
      root.add_subcommand("prepare", "Train the tokenizer (or reuse it) and encode the corpus into token shards");
  auto config_path = std::make_shared<std::string>();
  auto overrides = std::make_shared<std::vector<std::string>>();
  app->add_option("config", *config_path, "JSON config file")->required();
  add_set_option(*app, *overrides);
  return {app, [=] {
            Config config = load_config(*config_path, *overrides);
            PreparedDataset dataset = prepare_dataset(config.data, config.threads);
            // Format ≤ 3 recorded no boundaries: say so rather than print a count that was never known.
            std::string documents = "document boundaries unknown (dataset format 3 or older)";
            if (!dataset.train_documents.empty())
              documents =
                  fmt::format("{} train / {} val documents", dataset.train_document_count, dataset.val_document_count);
            spdlog::info("dataset {}: vocab {}, {} train / {} val tokens, {}, unigram entropy {:.3f} nats{}",
                         dataset.dir, dataset.vocab_size, dataset.train_tokens, dataset.val_tokens, documents,
                         dataset.unigram_entropy_nats, dataset.reused ? " (cached)" : "");
            return 0;
          }};
}

}  // namespace ssmax
