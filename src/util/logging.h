#pragma once
// Console logging through spdlog, plus an optional copy into a run's train.log.
#include <string>

namespace ssmax {

void init_console_logging();
// In a distributed run, ranks other than 0 print only warnings and errors, marked with their rank.
void log_as_rank(int rank);
// Adds (or replaces) the file copy of the log; appends when the file exists.
void log_to_file(const std::string& path);

}  // namespace ssmax
