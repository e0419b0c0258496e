#include "util/logging.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>

namespace ssmax {

void init_console_logging() {
  auto logger = std::make_shared<spdlog::logger>("ssmax", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_pattern("[%H:%M:%S] %^%v%$");
  logger->flush_on(spdlog::level::info);
  // A train.log that cannot grow (full disk, ulimit -f) is said once; spdlog's own handler repeats a
  // "[*** LOG ERROR ***]" line for every message, burying the error that matters. The console sink comes first,
  // so every message has reached the console by the time the file fails; so does this warning (its own failure in
  // the file comes back here and is not said again).
  logger->set_error_handler([](const std::string& message) {
    static std::atomic<bool> said{false};
    if (said.exchange(true)) return;
    spdlog::warn("the log file cannot be written ({}); the log continues on the console only", message);
  });
  spdlog::set_default_logger(logger);
}

void log_as_rank(int rank) {
  if (rank == 0) return;
  auto& console = spdlog::default_logger()->sinks().front();
  console->set_pattern(fmt::format("[%H:%M:%S] [rank {}] %^%v%$", rank));
  console->set_level(spdlog::level::warn);
}

void log_to_file(const std::string& path) {
  auto& sinks = spdlog::default_logger()->sinks();
  if (sinks.size() > 1) sinks.resize(1);
  auto file = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, /*truncate=*/false);
  file->set_pattern("[%Y-%m-%d %H:%M:%S] [%l] %v");
  sinks.push_back(file);
}

}  // namespace ssmax
