#pragma once
#include <string>

namespace ssmax {

std::string cpu_model();  // from /proc/cpuinfo, "unknown" elsewhere
int hardware_threads();   // at least 1
std::string host_name();
std::string git_revision();  // of the source tree this binary was built from
double peak_rss_mb();        // this process's peak resident memory so far

}  // namespace ssmax
