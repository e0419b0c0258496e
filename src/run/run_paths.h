#pragma once
// A run directory's files, each name spelled here and nowhere else:
//
//   <run>/config.json                      the resolved config the run was made with (train/run_dir.h)
//   <run>/train.log                        everything the run logged
//   <run>/metrics.jsonl                    one record per logged step or evaluation (run/metrics.h)
//   <run>/events.out.tfevents.ssmax-gpt    the same records for TensorBoard (run/tensorboard.h)
//   <run>/events.damaged-1                 a damaged event file moved aside on resume (a name TensorBoard skips)
//   <run>/checkpoints/step_00001000.pt     a checkpoint archive (train/checkpoint.h), and beside it
//   <run>/checkpoints/step_00001000.json   its manifest, written after it (run/checkpoint_catalog.h)
//   <run>/checkpoints/latest               the newest archive's file name, written last (kLatest)
//   <run>/finetune.json                    a finetune's task and source (train/finetune.h)
#include <cstdint>
#include <string>

namespace ssmax {

class RunPaths {
 public:
  explicit RunPaths(std::string run_dir) : dir_(std::move(run_dir)) {}

  const std::string& dir() const { return dir_; }
  std::string config() const { return file("config.json"); }
  std::string log() const { return file("train.log"); }
  std::string metrics() const { return file("metrics.jsonl"); }
  std::string events() const { return file("events.out.tfevents.ssmax-gpt"); }
  std::string damaged_events(int n) const;  // events.damaged-<n>: no "tfevents" in it, or TensorBoard would read it
  std::string finetune_task() const { return file("finetune.json"); }
  std::string checkpoints() const { return file(kCheckpoints); }
  std::string checkpoint(int64_t step) const;  // checkpoints/step_00001000.pt
  std::string manifest(int64_t step) const;    // checkpoints/step_00001000.json
  static constexpr const char* kCheckpoints = "checkpoints";
  static constexpr const char* kLatest = "latest";  // beside the archives

  // The step of a checkpoint file name ("step_00001000.pt") or of its manifest ("step_00001000.json"), -1 for any
  // other name; `extension` is ".pt" or ".json".
  static int64_t step_of(const std::string& file_name, const std::string& extension);

 private:
  std::string file(const char* name) const;  // <run>/name, joined as std::filesystem joins paths
  std::string dir_;
};

}  // namespace ssmax
