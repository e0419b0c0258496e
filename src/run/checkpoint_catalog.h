#pragma once
// A run's checkpoints on disk: <run>/checkpoints/step_00001000.pt, each with a manifest step_00001000.json (step,
// size, content hash, val loss) written after the archive, and the pointer checkpoints/latest written last. Here:
// finding, verifying and retiring them; what is inside one is checkpoint_state.h, the file format checkpoint.h.
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace ssmax {

// <run>/checkpoints/step_00001000.pt
std::string checkpoint_path(const std::string& run_dir, int64_t step);

// Writes the manifest of the archive at `path` (already in place) and points `latest` at it.
void record_checkpoint(const std::string& path, int64_t step, double val_loss);

struct CheckpointEntry {
  std::string path;
  int64_t step = 0;
  double val_loss = std::numeric_limits<double>::quiet_NaN();  // at that step, if evaluated
};
// Checkpoints of a run that have a manifest, oldest first (contents not verified: see verify_checkpoint).
std::vector<CheckpointEntry> list_checkpoints(const std::string& run_dir);

// Throws RuntimeFailure naming the file when its manifest is missing or its size/hash differ.
void verify_checkpoint(const std::string& path);

// The newest checkpoint that verifies; warns about newer ones that do not. Throws RuntimeFailure
// when the run has no valid checkpoint.
std::string find_resume_checkpoint(const std::string& run_dir);

// A checkpoint named on the command line, and the run directory it belongs to.
struct ResolvedCheckpoint {
  std::string path;     // the verified checkpoint file
  std::string run_dir;  // <run> of <run>/checkpoints/step_N.pt; any other file's own directory
};
// `target` is a file (verified, no fallback) or a run directory (its newest valid checkpoint). Throws UsageError
// when it is neither, RuntimeFailure when the file is damaged.
ResolvedCheckpoint resolve_checkpoint(const std::string& target);

// Keeps the newest `keep_last` checkpoints plus the one with the best validation loss; deletes the rest
// and any leftovers of interrupted writes.
void prune_checkpoints(const std::string& run_dir, int keep_last);

}  // namespace ssmax
