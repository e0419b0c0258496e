// ssmax-gpt keys [--markdown]: every config key with its type, default, allowed values and meaning.
#include <cstdio>

#include "cli/commands.h"
#include "config/config.h"
#include "util/text.h"

namespace ssmax {

Command add_keys_command(CLI::App& root) {
  auto* app = root.add_subcommand(
      "keys", "List every config key with its type, default, allowed values and meaning (what --set accepts)");
  auto markdown = std::make_shared<bool>(false);
  app->add_flag("--markdown", *markdown, "Print the config table of docs/configuration.md instead");
  return {app, [markdown] {
            if (*markdown) {
              std::fputs(config_reference_markdown().c_str(), stdout);
              return 0;
            }
            for (const auto& k : config_reference()) {
              const std::string allowed = k.choices.empty() ? k.range : join(k.choices, "|");
              std::printf("%s = %s  (%s%s%s)\n    %s\n", k.key.c_str(), k.default_value.c_str(), k.type.c_str(),
                          allowed.empty() ? "" : "; ", allowed.c_str(), k.doc.c_str());
            }
            return 0;
          }};
}

}  // namespace ssmax
