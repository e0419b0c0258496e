#pragma once
// One writer per run directory. Two processes training into one out_dir would interleave their checkpoints,
// metrics and logs; the second one to start is refused instead.
#include <string>

namespace ssmax {

// Takes an exclusive flock(2) on <dir>/run.lock and keeps it until the process exits. The kernel drops the lock
// when its holder dies, however it dies, so a crash or kill -9 never leaves the directory locked (the file stays;
// it is harmless). Taking the lock again for a directory this process already holds is a no-op (a study trains,
// then resumes, one run in one process). Throws UsageError naming the holder's pid and command when another
// process has it, RuntimeFailure when the lock file cannot be opened. Not reliable on NFS.
void hold_run_dir_lock(const std::string& dir);

}  // namespace ssmax
