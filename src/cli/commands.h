#pragma once
// Each subcommand lives in its own file and registers itself on the root app.
#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace ssmax {

struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;  // returns the process exit code; throws UsageError/RuntimeFailure
};

Command add_prepare_command(CLI::App& root);
Command add_train_command(CLI::App& root);
Command add_bench_command(CLI::App& root);
Command add_export_command(CLI::App& root);
Command add_sweep_command(CLI::App& root);
Command add_compare_command(CLI::App& root);
Command add_generate_command(CLI::App& root);
Command add_eval_command(CLI::App& root);
Command add_attention_command(CLI::App& root);
Command add_needle_command(CLI::App& root);
Command add_recall_command(CLI::App& root);
Command add_finetune_command(CLI::App& root);
Command add_study_command(CLI::App& root);
Command add_keys_command(CLI::App& root);

// "--set KEY=VALUE" (repeatable), shared by every subcommand that reads a config.
void add_set_option(CLI::App& app, std::vector<std::string>& overrides);

}  // namespace ssmax
