// ssmax-gpt: entry point. Exit codes: 0 ok, 2 usage or config error, 1 runtime failure.
#include <c10/util/Logging.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdlib>

#include "cli/commands.h"
#include "dist/distributed.h"
#include "util/errors.h"
#include "util/interrupt.h"
#include "util/logging.h"
#include "util/system_info.h"
#include "util/text.h"

namespace {

// Under torchrun every process runs the same command line; only training is spread over processes.
void refuse_single_process_command_under_launcher(const CLI::App& command) {
  const auto env = ssmax::read_launch_environment();
  const std::string name = command.get_name();
  if (env.world_size > 1 && name != "train" && name != "sweep" && name != "study")
    throw ssmax::UsageError("`" + name + "` runs in one process, but WORLD_SIZE=" + std::to_string(env.world_size) +
                            " says a launcher started several: run it without torchrun (only train, sweep and "
                            "study's pretraining are distributed)");
}

// The error line, and for the other ranks of a distributed run, a note in the store that names this rank's error.
void report(const std::string& message) {
  spdlog::error("{}", message);
  ssmax::Distributed::instance().note_failure(message);
}

}  // namespace

namespace ssmax {

void add_set_option(CLI::App& app, std::vector<std::string>& overrides) {
  app.add_option("--set", overrides,
                 "Override a config key by dotted path, typed by the schema; repeatable "
                 "(e.g. --set model.attention.normalizer=ssmax --set optim.lr=3e-4)")
      ->type_name("KEY=VALUE")
      ->allow_extra_args(false);
}

}  // namespace ssmax

int main(int argc, char** argv) {
  // Past a file-size limit (ulimit -f) a write then fails with EFBIG and is reported like a full disk, naming the
  // file, instead of SIGXFSZ killing the process in the middle of it.
  std::signal(SIGXFSZ, SIG_IGN);
  ssmax::remove_unfinished_files_on_signal();
  ssmax::keep_freed_memory_for_reuse();
  ssmax::init_console_logging();
  // LibTorch's own log (c10d's connection retries with their backtraces: ~35 lines before our one-line error) stays
  // out of the user's way: what it throws reaches the user as our one line; TORCH_CPP_LOG_LEVEL=INFO (or WARNING,
  // ERROR) shows its log again, for debugging LibTorch itself. initLogging reads the variable again after startup.
  setenv("TORCH_CPP_LOG_LEVEL", "FATAL", /*overwrite=*/0);
  c10::initLogging();
  CLI::App app{"ssmax-gpt: pretrain small GPTs whose attention normalizer is softmax, SSMax (softmax((s·ln n)·z)) "
               "or SSMax with bias, and compare them."};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Help for every subcommand");
  std::vector<ssmax::Command> commands = {
      ssmax::add_prepare_command(app),  ssmax::add_train_command(app),  ssmax::add_bench_command(app),
      ssmax::add_export_command(app),   ssmax::add_sweep_command(app),  ssmax::add_compare_command(app),
      ssmax::add_generate_command(app), ssmax::add_eval_command(app),   ssmax::add_attention_command(app),
      ssmax::add_needle_command(app),   ssmax::add_recall_command(app), ssmax::add_finetune_command(app),
      ssmax::add_study_command(app),    ssmax::add_keys_command(app)};
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);   // --help
    report(std::string(e.what()) + " (see --help)");  // one line, as every other error
    return 2;
  }
  try {
    for (auto& command : commands)
      if (command.app->parsed()) {
        refuse_single_process_command_under_launcher(*command.app);
        return command.run();
      }
  } catch (const ssmax::UsageError& e) {
    report(e.what());
    return 2;
  } catch (const std::exception& e) {
    report(ssmax::first_line(e.what()));  // c10::Error appends a C++ backtrace: users need only the line
    return 1;
  }
  return 2;
}
