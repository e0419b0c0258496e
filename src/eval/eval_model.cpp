#include "eval/eval_model.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <filesystem>
#include <set>

#include "run/device.h"
#include "train/cpu_blas.h"
#include "util/errors.h"
#include "util/system_info.h"
#include "util/text.h"

namespace ssmax {
namespace fs = std::filesystem;

namespace {

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

bool swap_normalizer(Config& config, const EvalLoadOptions& options, const std::string& checkpoint) {
  const NormalizerSwap& swap = options.swap;
  check_arguments(swap);  // callers other than the commands (a study, the tests) meet the same check
  auto& m = config.model;
  auto& attention = m.attention;
  if (!swap.normalizer) return false;  // check_arguments(NormalizerSwap) refused parameters without a normalizer
  const Normalizer trained = attention.normalizer, wanted = *swap.normalizer;
  if (!normalizer_switch_allowed(trained, wanted))
    throw UsageError("--normalizer " + normalizer_name(wanted) + ": " + checkpoint + " was trained with " +
                     normalizer_name(trained) + "; a swap may only keep or add parameters (" +
                     allowed_normalizer_switches() + ")");
  if (has_learned_scale(trained) && swap.s)
    throw UsageError("--s: " + checkpoint + " was trained with " + normalizer_name(trained) +
                     " and keeps its learned s; --s applies to a softmax-trained model");
  // s·ln(block_size) = 1: the last row of a training-length window is exactly softmax.
  if (!has_learned_scale(trained))
    attention.s_init = swap.s.value_or(1.0 / std::log(static_cast<double>(m.block_size)));
  attention.normalizer = wanted;
  attention.b_init = swap.b.value_or(0.0);
  attention.logn_length = static_cast<int>(swap.logn_length.value_or(m.block_size));
  attention.attn_scale = swap.attn_scale.value_or(0.1);
  attention.floor_scale = static_cast<int>(swap.floor_scale.value_or(m.block_size));
  attention.scaled_layers = swap.scaled_layers.value_or("all");
  if (attention.scaled_layers == "nope" && !m.has_nope_layers())
    throw UsageError("--scaled-layers nope: every layer of " + checkpoint + " sees positions (model.position = " +
                     m.position + (m.position == "rope" ? ", no model.nope_every)" : ")"));
  return true;
}

namespace {

// "+llama4(a=0.1,F=256)", "+ssmax(s=0.18)": what an evaluation swapped in, for labels.
std::string swap_label(const ModelConfig& m, bool adds_s) {
  const auto& a = m.attention;
  std::string label = " +" + normalizer_name(a.normalizer);
  if (a.normalizer == Normalizer::Logn) label += "(L=" + std::to_string(m.resolved_logn_length());
  else if (a.normalizer == Normalizer::Llama4)
    label += "(a=" + short_number(a.attn_scale) + ",F=" + std::to_string(m.resolved_floor_scale());
  else label += adds_s ? "(s=" + short_number(a.s_init) : "(b=" + short_number(a.b_init);
  return label + (a.scaled_layers == "nope" ? ",nope)" : ")");
}

}  // namespace

int label_components(const std::vector<std::string>& targets) {
  std::set<std::string> names;
  for (const auto& target : targets)
    if (!names.insert(run_name(resolve_checkpoint(target).run_dir, 1)).second) return 2;
  return 1;
}

namespace {
EvalLoadOptions start_evaluation(const EvalRuntimeArgs& runtime, const NormalizerSwap& swap,
                                 const std::vector<std::string>& targets) {
  at::set_num_threads(runtime.threads > 0 ? runtime.threads : hardware_threads());
  EvalLoadOptions load;
  load.device = runtime.device;
  load.swap = swap;
  load.label_components = label_components(targets);
  return load;
}
}  // namespace

Evaluation::Evaluation(const EvalRuntimeArgs& runtime, const NormalizerSwap& swap,
                       const std::vector<std::string>& targets, std::optional<double> rope_theta,
                       std::optional<double> rope_theta_scale)
    : load(start_evaluation(runtime, swap, targets)),
      precision_(resolve_device(runtime.device), runtime.precision == "bf16") {
  load.rope_theta = rope_theta;
  load.rope_theta_scale = rope_theta_scale;
}

EvalModel load_eval_model(const std::string& target, const EvalLoadOptions& options) {
  EvalModel m;
  m.target = target;
  CheckpointInfo info = open_checkpoint(target);
  m.checkpoint = info.path;
  m.run_dir = info.run_dir;
  m.meta = std::move(info.meta);
  m.config = std::move(info.config);
  m.label = run_name(m.run_dir, options.label_components) + "@" + std::to_string(m.meta.step);

  const bool adds_s = !has_learned_scale(m.config.model.attention.normalizer);
  const bool fresh = swap_normalizer(m.config, options, m.checkpoint);
  if (fresh) m.label += swap_label(m.config.model, adds_s);
  if (options.rope_theta || options.rope_theta_scale) {
    if (m.config.model.position != "rope")
      throw UsageError("--rope-theta/--rope-theta-scale apply to RoPE models only; " + m.checkpoint +
                       " has no RoPE (model.position = " + m.config.model.position + ")");
    const double theta =
        options.rope_theta ? *options.rope_theta : m.config.model.rope_theta * *options.rope_theta_scale;
    m.label += " θ=" + short_number(theta);
    m.config.model.rope_theta = theta;
  }

  m.device = resolve_device(options.device);
  // The library the checkpoint was trained with (or, for an older checkpoint, the same cached choice as training).
  if (m.device.is_cpu())
    choose_cpu_blas(m.config.cpu_blas, m.config.model, m.meta.vocab_size,
                    static_cast<int64_t>(m.config.train.batch_size) * m.config.model.block_size,
                    cpu_blas_from_name(m.meta.cpu_blas_used), /*quiet=*/true);
  m.model = GPT(GPTOptions{m.config.model, m.meta.vocab_size});
  load_checkpoint(m.checkpoint, m.model, nullptr, /*new_normalizer_parameters=*/fresh);
  m.model->to(m.device);
  m.model->eval();
  return m;
}

PreparedDataset checkpoint_dataset(const CheckpointMeta& meta, const std::string& checkpoint) {
  refuse_without_text(meta, checkpoint, "this evaluation reads text");
  if (meta.dataset_dir.empty()) throw RuntimeFailure(checkpoint + ": the checkpoint names no dataset directory");
  PreparedDataset ds = load_prepared_dataset(meta.dataset_dir);
  if (!meta.dataset_fingerprint.empty() && ds.fingerprint != meta.dataset_fingerprint)
    throw RuntimeFailure(meta.dataset_dir + ": dataset fingerprint " + ds.fingerprint + " differs from " +
                         meta.dataset_fingerprint + " recorded in " + checkpoint + " (the dataset was rebuilt)");
  return ds;
}

}  // namespace ssmax
