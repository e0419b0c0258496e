#pragma once
// Console logging through spdlog, plus an optional copy into a run's train.log.
#include <string>

namespace ssmax {

void init_console_logging();
// Adds (or replaces) the file copy of the log; appends when the file exists.
void log_to_file(const std::string& path);

}  // namespace ssmax
