// `train --resume`: continue a run exactly where its checkpoint left it.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

#include "dist/distributed.h"
#include "run/metrics.h"
#include "run/run_paths.h"
#include "train/run_dir.h"
#include "train/session.h"
#include "util/dir_lock.h"
#include "util/errors.h"
#include "util/files.h"
#include "util/logging.h"
#include "util/text.h"

namespace ssmax {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

bool overrides_key(const std::vector<std::string>& overrides, const std::string& key) {
  for (const auto& assignment : overrides)
    if (assignment.rfind(key + "=", 0) == 0) return true;
  return false;
}

// The data position is global (step, global micro-batch), so any world size can continue a run. Resuming on a
// different number of processes keeps the global batch (batch × accum × world) by rescaling the accumulation,
// unless --set train.grad_accum_steps says otherwise.
void keep_global_batch(json& config, const CheckpointMeta& stored, int world, const std::vector<std::string>& overrides,
                       const std::string& target) {
  if (stored.world_size == world) return;
  const int accum = config["train"]["grad_accum_steps"].get<int>();
  const int64_t micro_batches = int64_t{accum} * stored.world_size;
  if (overrides_key(overrides, "train.grad_accum_steps")) {
    if (int64_t{accum} * world != micro_batches)
      spdlog::warn("world size {} → {} with train.grad_accum_steps {}: the global batch changes from {} to {} "
                   "micro-batches",
                   stored.world_size, world, accum, micro_batches, int64_t{accum} * world);
    return;
  }
  if (micro_batches % world != 0)
    throw UsageError(fmt::format("--resume {}: the run's global batch is {} micro-batches ({} ranks × accum {}), "
                                 "which {} ranks cannot share evenly; pass --set train.grad_accum_steps=K (this "
                                 "changes the global batch) or use a world size that divides {}",
                                 target, micro_batches, stored.world_size, accum, world, micro_batches));
  config["train"]["grad_accum_steps"] = micro_batches / world;
  spdlog::info("world size {} → {}: train.grad_accum_steps {} → {} keeps the global batch of {} micro-batches",
               stored.world_size, world, accum, micro_batches / world, micro_batches);
}

// A checkpoint copied into another run's directory would continue under that run's name, logs and config.json.
// The model's shape (model.* but the attention normalizer, which a switch changes) must match the directory's.
void refuse_foreign_checkpoint(const std::string& checkpoint, const std::string& run_dir, const json& stored) {
  const fs::path config_file = RunPaths(run_dir).config();
  if (!fs::exists(config_file)) return;
  json directory_config = json::parse(read_file(config_file.string()), nullptr, false);
  upgrade_stored_config(directory_config);
  if (!directory_config.is_object() || !directory_config.contains("model") || !stored.contains("model")) return;
  std::vector<std::string> differing;
  for (const auto& key :
       config_differences(json{{"model", directory_config["model"]}}, json{{"model", stored["model"]}}))
    if (key.rfind("model.attention.", 0) != 0) differing.push_back(key);
  if (!differing.empty())
    throw RuntimeFailure(checkpoint + ": written by a model of another shape (" + join(differing) + ") than " +
                         config_file.string() + " describes; it belongs to another run");
}

}  // namespace

TrainSummary resume(const std::string& target, const std::vector<std::string>& overrides, const TrainOptions& options) {
  const CheckpointInfo opened = open_checkpoint(target);
  const std::string& checkpoint = opened.path;
  const std::string& run_dir = opened.run_dir;
  const CheckpointMeta& stored = opened.meta;
  refuse_foreign_checkpoint(checkpoint, run_dir, stored.config);
  if (options.stop_at > 0 && options.stop_at <= stored.step)
    throw UsageError("--stop-at " + std::to_string(options.stop_at) + ": " + checkpoint + " is already at step " +
                     std::to_string(stored.step) + "; give a later step");

  json merged = stored.config;
  for (const auto& assignment : overrides) apply_override(merged, assignment);
  join_process_group(config_from_json(merged, "--resume " + target));
  auto& dist = Distributed::instance();
  keep_global_batch(merged, stored, dist.world_size(), overrides, target);
  const Config config = config_from_json(merged, "--resume " + target);
  const json resolved = config_to_json(config);
  const Normalizer old_normalizer = opened.config.model.attention.normalizer;
  const bool switching = normalizer_switch_allowed(old_normalizer, config.model.attention.normalizer);
  const auto allowed = config_keys_changeable_on_resume(OnResume::Changeable);
  const auto with_switch = config_keys_changeable_on_resume(OnResume::WithNormalizerSwitch);
  auto listed = [](const std::vector<std::string>& keys, const std::string& key) {
    return std::find(keys.begin(), keys.end(), key) != keys.end();
  };
  std::vector<std::string> refused;
  for (const auto& key : config_differences(stored.config, resolved))
    if (!(key == "out_dir" || listed(allowed, key) || (switching && listed(with_switch, key)))) refused.push_back(key);
  if (!refused.empty())
    throw UsageError("--resume " + target + ": cannot change " + join(refused) +
                     " when resuming (allowed: " + join(allowed) + ", or switching the normalizer " +
                     allowed_normalizer_switches() + "); start a new run instead");

  // Continue in the run's own directory, whatever out_dir said when the run was made.
  Config session_config = config;
  session_config.out_dir = run_dir;
  dist.on_main(
      "locking out_dir",
      [&] {
        hold_run_dir_lock(run_dir);
        return std::string();
      },
      dist.timeout());
  reopen_run_logs(run_dir, stored);
  auto session = make_session(session_config, run_dir, stored.cpu_blas_used);
  if (session->dataset.fingerprint != stored.dataset_fingerprint)
    throw UsageError("--resume " + target + ": the dataset differs from the one this run trained on (fingerprint " +
                     session->dataset.fingerprint + " vs " + stored.dataset_fingerprint +
                     "); restore the original data sources or start a new run");
  const json previous_meta_config = stored.config;
  const std::string cpu_blas_used = session->meta.cpu_blas_used;
  session->meta = load_checkpoint(checkpoint, session->model, session->optimizer.get(), switching);
  session->meta.cpu_blas_used = cpu_blas_used;
  session->meta.config = config_to_json(session_config);
  spdlog::info("resumed {} from {} at step {}/{}{}", run_dir, checkpoint, session->meta.step, config.train.max_steps,
               dist.active() ? fmt::format(" on {} ranks ({})", dist.world_size(), dist.backend_name()) : "");
  const auto ranks = describe_ranks(session->device);
  for (size_t r = 0; r < ranks.size(); ++r) spdlog::info("{:<11}{}", "rank " + std::to_string(r), ranks[r]);
  for (const auto& key : config_differences(previous_meta_config, session->meta.config))
    if (key != "out_dir") spdlog::info("  changed on resume: {}", key);
  if (dist.is_main()) write_file_atomic(RunPaths(run_dir).config(), session->meta.config.dump(2) + "\n");

  if (switching) {
    const auto& a = config.model.attention;
    std::string event =
        "normalizer switched from " + normalizer_name(old_normalizer) + " to " + normalizer_name(a.normalizer);
    spdlog::info("{} at step {} (s_init {}, learn_s {}, b_init {}); new parameters start with fresh optimizer state",
                 event, session->meta.step, config.model.resolved_s_init(), a.learn_s, a.b_init);
    MetricsRecord record;
    record.step = session->meta.step;
    record.tokens = session->meta.tokens;
    record.elapsed_s = session->meta.elapsed_s;
    record.event = event;
    if (dist.is_main()) MetricsWriter(RunPaths(run_dir).metrics()).write(record);
  }
  return run_training_loop(*session, options);
}

}  // namespace ssmax
