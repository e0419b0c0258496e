#include "train/run_dir.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "run/run_paths.h"
#include "train/checkpoint.h"
#include "util/dir_lock.h"
#include "util/errors.h"
#include "util/files.h"
#include "util/system_info.h"

namespace ssmax {
namespace fs = std::filesystem;
using json = nlohmann::json;

RunDirState open_run_dir(const Config& config) {
  const fs::path dir = config.out_dir;
  std::error_code error;
  fs::create_directories(dir, error);
  if (error || !fs::is_directory(dir))
    throw UsageError("out_dir = '" + config.out_dir +
                     "' cannot be created: " + (error ? error.message() : "a file of that name exists") +
                     " (choose another with --set out_dir=DIR)");
  if (::access(dir.c_str(), W_OK) != 0)
    throw UsageError("out_dir = '" + config.out_dir + "' is not writable (choose another with --set out_dir=DIR)");
  hold_run_dir_lock(config.out_dir);

  const json resolved = config_to_json(config);
  const RunPaths files(dir.string());
  const fs::path config_file = files.config();
  RunDirState state = RunDirState::Fresh;
  // Only a directory with run output is "a run": config.json alone is a start that failed early
  // (missing source, bad device) and must not block rerunning with the corrected config.
  const bool has_output = fs::exists(files.metrics()) || fs::exists(files.checkpoints());
  if (fs::exists(config_file) && has_output) {
    json existing = json::parse(read_file(config_file.string()), nullptr, false);
    // Keys added to the schema since that run was made take their defaults, as they did in that run.
    try {
      if (!existing.is_discarded()) existing = config_to_json(config_from_json(existing, config_file.string()));
    } catch (const UsageError&) {
      // An old config the schema no longer accepts: compared as written, so the keys that differ are named.
    }
    auto differences = existing.is_discarded() ? std::vector<std::string>{"(unreadable config.json)"}
                                               : config_differences(existing, resolved);
    if (!differences.empty()) {
      std::string keys;
      for (const auto& k : differences) keys += (keys.empty() ? "" : ", ") + k;
      throw UsageError("out_dir = '" + config.out_dir + "' already holds a different run (config differs in: " + keys +
                       "); pick another out_dir (--set out_dir=DIR)");
    }
    auto checkpoints = list_checkpoints(dir.string());
    if (!checkpoints.empty())
      state = checkpoints.back().step == config.train.max_steps ? RunDirState::SameRunComplete
                                                                : RunDirState::SameRunUnfinished;
  } else if (has_output && !fs::exists(config_file)) {
    throw UsageError("out_dir = '" + config.out_dir + "' holds run files but no config.json; pick another out_dir");
  }
  if (state == RunDirState::Fresh) {
    // A fresh start in a directory that saw an aborted start (no checkpoint yet): drop its partial output.
    fs::remove(files.metrics());
    fs::remove(files.log());
    write_file_atomic(config_file.string(), resolved.dump(2) + "\n");
  }
  return state;
}

void log_run_header(const Config& c, int64_t parameters, int64_t vocab_size, const std::string& device,
                    const std::string& dataset_dir, double unigram_entropy, const std::vector<std::string>& ranks) {
  const auto& m = c.model;
  const auto& a = m.attention;
  std::string normalizer = normalizer_name(a.normalizer);
  if (has_learned_scale(a.normalizer)) {
    normalizer += " (s_init " + fmt::format("{:g}", m.resolved_s_init()) + (a.learn_s ? ", learned" : ", fixed");
    if (has_bias(a.normalizer)) normalizer += fmt::format(", b_init {:g}", a.b_init);
    normalizer += ")";
  }
  if (is_parameter_free_scaling(a.normalizer))
    normalizer += fmt::format(" (c = {}: {}{})", normalizer_spec(a.normalizer).factor,
                              a.normalizer == Normalizer::Logn
                                  ? fmt::format("L = {}", m.resolved_logn_length())
                                  : fmt::format("a = {:g}, F = {}", a.attn_scale, m.resolved_floor_scale()),
                              a.scaled_layers == "nope" ? "; layers without RoPE only" : "");
  const int64_t world = std::max<int64_t>(1, static_cast<int64_t>(ranks.size()));
  const int64_t tokens_per_step = int64_t{c.train.batch_size} * c.train.grad_accum_steps * world * m.block_size;
  const std::vector<std::pair<std::string, std::string>> rows = {
      {"run", c.name + "  →  " + c.out_dir},
      {"model",
       fmt::format("{} layers × {} heads{} × {} wide, block {}, vocab {}, {:.2f}M parameters", m.n_layer, m.n_head,
                   m.resolved_n_kv_head() != m.n_head ? fmt::format(" ({} kv)", m.resolved_n_kv_head()) : "", m.n_embd,
                   m.block_size, vocab_size, parameters / 1e6)},
      {"block", fmt::format("{} norm, {} MLP ({} hidden), {} positions{}, {}", m.norm, m.mlp, m.resolved_mlp_hidden(),
                            m.position,
                            m.position != "rope" ? ""
                            : m.nope_every > 0   ? fmt::format(" (θ={:g}; none in layers {}, {}, …)", m.rope_theta,
                                                               m.nope_every, 2 * m.nope_every)
                                                 : fmt::format(" (θ={:g})", m.rope_theta),
                            m.tie_embeddings ? "tied embeddings" : "untied embeddings")},
      {"normalizer", normalizer},
      {"optimizer", fmt::format("AdamW lr {:g}→{:g} {} warmup {}, β=({:g},{:g}), wd {:g}, clip {:g}", c.optim.lr,
                                c.optim.min_lr, c.optim.schedule, c.optim.warmup_steps, c.optim.beta1, c.optim.beta2,
                                c.optim.weight_decay, c.optim.grad_clip)},
      {"batch", fmt::format("{} × {} accum{} × {} tokens = {} tokens/step, {} steps", c.train.batch_size,
                            c.train.grad_accum_steps, world > 1 ? fmt::format(" × {} ranks", world) : "", m.block_size,
                            tokens_per_step, c.train.max_steps)},
      {"data", fmt::format("{} (unigram entropy {:.3f} nats)", dataset_dir, unigram_entropy)},
      {"seed", std::to_string(c.seed)},
      {"device", fmt::format("{}, {} threads", device, at::get_num_threads())},
      {"cpu", cpu_model()},
      {"versions", fmt::format("ssmax-gpt {}, LibTorch {}", git_revision(), TORCH_VERSION)},
  };
  for (const auto& [key, value] : rows) spdlog::info("{:<11}{}", key, value);
  for (size_t r = 0; r < ranks.size(); ++r) spdlog::info("{:<11}{}", "rank " + std::to_string(r), ranks[r]);
}

}  // namespace ssmax
