#pragma once
#include <string>

namespace ssmax {

std::string cpu_model();  // from /proc/cpuinfo, "unknown" elsewhere
// The model name with family, model and stepping: virtual machines often report one generic name ("Intel(R) Xeon(R)
// Processor") for CPUs of different generations. For keys of per-machine measurements.
std::string cpu_signature();
// A word of /proc/cpuinfo's "flags" line ("avx2", "amx_bf16"). Flags named in SSMAX_HIDE_CPU_FLAGS (commas or
// spaces between them; "avx512*" names every flag it begins) read as absent: a test hook that makes this program
// treat the CPU as an older one (with ONEDNN_MAX_CPU_ISA, ATEN_CPU_CAPABILITY and MKL_ENABLE_INSTRUCTIONS the
// libraries follow; docs/testing.md).
bool cpu_has_flag(const std::string& flag);
int hardware_threads();  // at least 1
std::string host_name();
std::string git_revision();  // of the source tree this binary was built from
double peak_rss_mb();        // this process's peak resident memory so far

// glibc hands allocations above 32 MB straight to the kernel (mmap) and returns them on free, so every such
// tensor (a step's logits, an MLP activation at a larger shape) costs a page fault per 4 KiB on each use: tens of
// milliseconds per 64 MB in a VM. This keeps freed memory in the process for the next step instead, so the
// resident size settles at the peak a step needs. Called once at the start of the program.
void keep_freed_memory_for_reuse();

}  // namespace ssmax
