// `train --resume`: continue a run exactly where its checkpoint left it.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

#include "report/metrics.h"
#include "train/run_dir.h"
#include "train/session.h"
#include "util/errors.h"
#include "util/files.h"
#include "util/logging.h"

namespace ssmax {
namespace fs = std::filesystem;
using json = nlohmann::json;

const std::vector<std::string>& resumable_keys() {
  static const std::vector<std::string> keys = {
      "train.max_steps", "train.log_every", "train.eval_every", "train.checkpoint_every", "train.keep_last",
      "optim.lr", "optim.min_lr", "optim.schedule", "optim.warmup_steps", "threads", "device",
      "train.precision", "train.tf32"};
  return keys;
}

namespace {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

// A softmax run may gain SSMax's s (and b); an ssmax run may gain b. Nothing may be taken away.
bool is_normalizer_switch(const std::string& from, const std::string& to) {
  return (from == "softmax" && (to == "ssmax" || to == "ssmax_bias")) || (from == "ssmax" && to == "ssmax_bias");
}

}  // namespace

TrainSummary resume(const std::string& target, const std::vector<std::string>& overrides, const TrainOptions& options) {
  const std::string checkpoint = resolve_checkpoint(target);
  const std::string run_dir = fs::path(checkpoint).parent_path().parent_path().string();
  const CheckpointMeta stored = read_checkpoint_meta(checkpoint);

  json merged = stored.config;
  for (const auto& assignment : overrides) apply_override(merged, assignment);
  const Config config = config_from_json(merged, "--resume " + target);
  const json resolved = config_to_json(config);
  const std::string old_normalizer = stored.config["model"]["attention"]["normalizer"].get<std::string>();
  const bool switching = is_normalizer_switch(old_normalizer, config.model.attention.normalizer);
  std::vector<std::string> refused;
  for (const auto& key : config_differences(stored.config, resolved)) {
    const auto& allowed = resumable_keys();
    bool ok = std::find(allowed.begin(), allowed.end(), key) != allowed.end() || key == "out_dir";
    if (switching && key.rfind("model.attention.", 0) == 0) ok = true;
    if (!ok) refused.push_back(key);
  }
  if (!refused.empty())
    throw UsageError("--resume " + target + ": cannot change " + join(refused) + " when resuming (allowed: " +
                     join(resumable_keys()) + ", or switching softmax → ssmax/ssmax_bias); start a new run instead");

  // Continue in the run's own directory, whatever out_dir said when the run was made.
  Config session_config = config;
  session_config.out_dir = run_dir;
  truncate_logs_to_checkpoint(run_dir, stored);
  log_to_file((fs::path(run_dir) / "train.log").string());
  auto session = make_session(session_config, run_dir);
  if (session->dataset.fingerprint != stored.dataset_fingerprint)
    throw UsageError("--resume " + target + ": the dataset differs from the one this run trained on (fingerprint " +
                     session->dataset.fingerprint + " vs " + stored.dataset_fingerprint +
                     "); restore the original data sources or start a new run");
  const json previous_meta_config = stored.config;
  session->meta = load_checkpoint(checkpoint, session->model, session->optimizer.get(), switching);
  session->meta.config = config_to_json(session_config);
  spdlog::info("resumed {} from {} at step {}/{}", run_dir, checkpoint, session->meta.step, config.train.max_steps);
  for (const auto& key : config_differences(previous_meta_config, session->meta.config))
    if (key != "out_dir") spdlog::info("  changed on resume: {}", key);
  write_file_atomic((fs::path(run_dir) / "config.json").string(), session->meta.config.dump(2) + "\n");

  if (switching) {
    const auto& a = config.model.attention;
    std::string event = "normalizer switched from " + old_normalizer + " to " + a.normalizer;
    spdlog::info("{} at step {} (s_init {}, learn_s {}, b_init {}); new parameters start with fresh optimizer state",
                 event, session->meta.step, a.s_init, a.learn_s, a.b_init);
    MetricsRecord record;
    record.step = session->meta.step;
    record.tokens = session->meta.tokens;
    record.elapsed_s = session->meta.elapsed_s;
    record.event = event;
    MetricsWriter((fs::path(run_dir) / "metrics.jsonl").string()).write(record);
  }
  return run_training_loop(*session, options);
}

}  // namespace ssmax
