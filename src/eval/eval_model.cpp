#include "eval/eval_model.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <filesystem>
#include <set>
#include <sstream>

#include "train/session.h"
#include "util/errors.h"
#include "util/system_info.h"

namespace ssmax {
namespace fs = std::filesystem;

namespace {

// <run>/checkpoints/step_N.pt belongs to <run>; any other file to its own directory.
std::string run_dir_of(const std::string& target, const std::string& checkpoint) {
  if (fs::is_directory(target)) return target;
  fs::path dir = fs::path(checkpoint).parent_path();
  if (dir.filename() == "checkpoints") dir = dir.parent_path();
  return dir.empty() ? std::string(".") : dir.string();
}

std::string short_number(double x) {
  std::ostringstream out;
  out << x;
  return out.str();
}

// Applies --normalizer/--s/--b to the config before the model is built; returns true when s/b are new.
bool swap_normalizer(Config& config, const EvalLoadOptions& options, const std::string& checkpoint) {
  if (options.normalizer.empty()) {
    if (!std::isnan(options.s))
      throw UsageError("--s applies only together with --normalizer ssmax|ssmax_bias (a softmax-trained model)");
    return false;
  }
  if (options.normalizer != "ssmax" && options.normalizer != "ssmax_bias")
    throw UsageError("--normalizer " + options.normalizer + " is not allowed: expected ssmax or ssmax_bias");
  if (config.model.attention.normalizer != "softmax")
    throw UsageError("--normalizer swaps SSMax into a softmax-trained model, but " + checkpoint + " was trained with " +
                     config.model.attention.normalizer);
  // s·ln(block_size) = 1: the last row of a training-length window is exactly softmax.
  const double s = std::isnan(options.s) ? 1.0 / std::log(static_cast<double>(config.model.block_size)) : options.s;
  config.model.attention.normalizer = options.normalizer;
  config.model.attention.s_init = s;
  config.model.attention.b_init = options.b;
  return true;
}

// The last `components` names of the run directory's absolute path, joined by '/'.
std::string run_name(const std::string& run_dir, int components) {
  fs::path path = fs::absolute(run_dir).lexically_normal();
  if (path.filename().empty()) path = path.parent_path();  // trailing slash
  std::string name;
  for (int i = 0; i < components && !path.filename().empty(); ++i, path = path.parent_path())
    name = name.empty() ? path.filename().string() : path.filename().string() + "/" + name;
  return name;
}

}  // namespace

int label_components(const std::vector<std::string>& targets) {
  std::set<std::string> names;
  for (const auto& target : targets) {
    const std::string checkpoint = resolve_checkpoint(target);
    if (!names.insert(run_name(run_dir_of(target, checkpoint), 1)).second) return 2;
  }
  return 1;
}

EvalLoadOptions start_evaluation(const std::string& device, int threads, const std::vector<std::string>& targets) {
  at::set_num_threads(threads > 0 ? threads : hardware_threads());
  EvalLoadOptions load;
  load.device = device;
  load.label_components = label_components(targets);
  return load;
}

EvalModel load_eval_model(const std::string& target, const EvalLoadOptions& options) {
  EvalModel m;
  m.target = target;
  m.checkpoint = resolve_checkpoint(target);
  m.run_dir = run_dir_of(target, m.checkpoint);
  m.meta = read_checkpoint_meta(m.checkpoint);
  m.config = config_from_json(m.meta.config, m.checkpoint);
  m.label = run_name(m.run_dir, options.label_components) + "@" + std::to_string(m.meta.step);

  const bool fresh = swap_normalizer(m.config, options, m.checkpoint);
  if (fresh) m.label += " +" + options.normalizer + "(s=" + short_number(m.config.model.attention.s_init) + ")";
  if (options.rope_theta > 0 || options.rope_theta_scale > 0) {
    if (m.config.model.position != "rope")
      throw UsageError("--rope-theta/--rope-theta-scale apply to RoPE models only; " + m.checkpoint +
                       " uses learned positions (model.position = " + m.config.model.position + ")");
    const double theta = options.rope_theta > 0 ? options.rope_theta : m.config.model.rope_theta * options.rope_theta_scale;
    m.label += " θ=" + short_number(theta);
    m.config.model.rope_theta = theta;
  }

  m.device = resolve_device(options.device);
  m.model = GPT(GPTOptions{m.config.model, m.meta.vocab_size});
  load_checkpoint(m.checkpoint, m.model, nullptr, /*new_normalizer_parameters=*/fresh);
  m.model->to(m.device);
  m.model->eval();
  return m;
}

PreparedDataset eval_dataset(const EvalModel& m) {
  if (m.meta.dataset_dir.empty())
    throw RuntimeFailure(m.checkpoint + ": the checkpoint names no dataset directory");
  PreparedDataset ds = load_prepared_dataset(m.meta.dataset_dir);
  if (!m.meta.dataset_fingerprint.empty() && ds.fingerprint != m.meta.dataset_fingerprint)
    throw RuntimeFailure(m.meta.dataset_dir + ": dataset fingerprint " + ds.fingerprint + " differs from " +
                         m.meta.dataset_fingerprint + " recorded in " + m.checkpoint + " (the dataset was rebuilt)");
  return ds;
}

}  // namespace ssmax
