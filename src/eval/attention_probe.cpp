// `attention`: attention mass of the final query on a needle, per layer and head, over several trials.
#include "eval/attention_probe.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <numeric>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "data/needle_prompt.h"
#include "eval/eval_commands.h"
#include "eval/eval_model.h"
#include "report/heatmap.h"
#include "report/run_data.h"
#include "run/device.h"
#include "train/precision.h"
#include "util/errors.h"
#include "util/files.h"
#include "util/text.h"

namespace ssmax {
namespace fs = std::filesystem;
using json = nlohmann::json;

torch::Tensor last_query_attention(GPT& model, const std::vector<uint32_t>& ids, const torch::Device& device) {
  if (ids.size() < 2) throw UsageError("attention: the prompt needs at least 2 tokens");
  torch::NoGradGuard no_grad;
  model->eval();
  auto x = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kLong).view({1, -1}).to(device);
  const int64_t T = x.size(1);
  std::vector<KVCache> caches;
  model->forward(x.narrow(1, 0, T - 1), &caches);
  std::vector<torch::Tensor> weights;
  model->forward(x.narrow(1, T - 1, 1), &caches, &weights);
  std::vector<torch::Tensor> rows;
  for (const auto& w : weights) rows.push_back(w[0].select(1, 0));  // [B, H, 1, T] → [H, T]
  return torch::stack(rows).to(torch::kCPU, torch::kDouble);
}

torch::Tensor attention_mass(const torch::Tensor& weights, size_t begin, size_t end) {
  return weights.narrow(-1, static_cast<int64_t>(begin), static_cast<int64_t>(end - begin)).sum(-1);
}

namespace {

struct Probe {
  std::string label;
  json config;                            // as trained, for grouping checkpoints into variants
  std::vector<std::vector<double>> mass;  // [layer][head], mean over trials
  json report;                            // this checkpoint's part of the JSON
};

// What would fail in a checkpoint's probe is refused before the first model is loaded.
void precheck(const std::string& target, const AttentionArgs& args) {
  const CheckpointInfo info = open_checkpoint(target);
  if (info.config.model.position == "learned" && args.length > info.config.model.block_size)
    throw UsageError("--length " + std::to_string(args.length) + ": " + info.path +
                     " uses learned positions and cannot go beyond model.block_size = " +
                     std::to_string(info.config.model.block_size));
  const PreparedDataset dataset = checkpoint_dataset(info.meta, info.path);
  check_needle_length(Tokenizer::load(dataset.tokenizer_model), "--length", args.length, args.seed, args.trials);
}

Probe probe_checkpoint(const std::string& target, const AttentionArgs& args, const EvalLoadOptions& load) {
  EvalModel m = load_eval_model(target, load);
  const PreparedDataset dataset = eval_dataset(m);
  const Tokenizer tokenizer = Tokenizer::load(dataset.tokenizer_model);
  const TokenSource haystack = TokenSource::from_shards(dataset.val_shards);
  const int64_t layers = m.config.model.n_layer, heads = m.config.model.n_head;

  auto mass_sum = torch::zeros({layers, heads}, torch::kDouble);
  double uniform_sum = 0, depth_sum = 0;
  size_t needle_tokens = 0;
  json trials = json::array();
  for (int trial = 0; trial < args.trials; ++trial) {
    const NeedlePrompt prompt = build_needle_prompt(tokenizer, haystack, args.length, args.depth, args.seed + trial);
    const auto weights = last_query_attention(m.model, prompt.ids, m.device);
    const auto mass = attention_mass(weights, prompt.needle_begin, prompt.needle_end);
    mass_sum += mass;
    needle_tokens = prompt.needle_end - prompt.needle_begin;
    // What a head that spreads evenly over every key would put on the needle.
    uniform_sum += static_cast<double>(needle_tokens) / static_cast<double>(prompt.ids.size());
    depth_sum += prompt.depth;
    trials.push_back({{"seed", args.seed + trial},
                      {"word", prompt.word},
                      {"needle_begin", prompt.needle_begin},
                      {"needle_end", prompt.needle_end},
                      {"depth", prompt.depth},
                      {"max_mass", mass.max().item<double>()}});
    spdlog::info("trial {}/{}: needle at tokens [{}, {}) of {}, top head mass {:.3f}", trial + 1, args.trials,
                 prompt.needle_begin, prompt.needle_end, prompt.ids.size(), mass.max().item<double>());
  }
  const auto mean = (mass_sum / args.trials).contiguous();
  const double uniform = uniform_sum / args.trials;

  struct Head {
    int64_t layer, head;
    double mass;
  };
  std::vector<Head> ranked;
  std::vector<std::vector<double>> grid(layers, std::vector<double>(heads));
  for (int64_t l = 0; l < layers; ++l)
    for (int64_t h = 0; h < heads; ++h) {
      grid[l][h] = mean[l][h].item<double>();
      ranked.push_back({l, h, grid[l][h]});
    }
  std::stable_sort(ranked.begin(), ranked.end(), [](const Head& a, const Head& b) { return a.mass > b.mass; });

  std::printf(
      "%s: attention of the final query on the needle (%zu tokens of %lld), mean over %d trial(s), depth %.2f\n",
      m.label.c_str(), needle_tokens, static_cast<long long>(args.length), args.trials, args.depth);
  std::printf("%5s %5s %8s %10s\n", "layer", "head", "mass", "x uniform");
  json top = json::array();
  for (const auto& head : ranked) {
    std::printf("%5lld %5lld %8.4f %10.1f\n", static_cast<long long>(head.layer), static_cast<long long>(head.head),
                head.mass, head.mass / uniform);
    top.push_back({{"layer", head.layer}, {"head", head.head}, {"mass", head.mass}});
  }
  std::fflush(stdout);

  return {m.label, config_to_json(m.config), grid,
          json{{"checkpoint", m.checkpoint},
               {"step", m.meta.step},
               {"label", m.label},
               {"mean_depth", depth_sum / args.trials},
               {"needle_tokens", needle_tokens},
               {"uniform_mass", uniform},
               {"mass", grid},
               {"heads_by_mass", top},
               {"per_trial", trials},
               {"run_dir", m.run_dir}}};
}

}  // namespace

std::string attention_file_stem(int64_t length, double depth) {
  // %g of the percentage: 0.29 is d29 (not int(28.999…) = 28), 0.125 is d12.5 (not d12, the name of 0.12).
  return "attention_L" + std::to_string(length) + "_d" + short_number(depth * 100);
}

int run_attention(const AttentionArgs& args) {
  check_arguments(args);
  for (const auto& target : args.checkpoints) precheck(target, args);
  const Evaluation evaluation(args.runtime, args.swap, args.checkpoints);
  std::vector<Probe> probes;
  for (const auto& target : args.checkpoints) probes.push_back(probe_checkpoint(target, args, evaluation.load));

  const std::string out_dir = args.out_dir.empty()
                                  ? (fs::path(probes[0].report["run_dir"].get<std::string>()) / "attention").string()
                                  : args.out_dir;
  fs::create_directories(out_dir);
  const std::string stem = attention_file_stem(args.length, args.depth);
  std::vector<json> configs;
  for (const auto& probe : probes) configs.push_back(probe.config);
  const auto variants = group_configs(configs);
  json results = json::array(), variants_json = json::array();
  for (const auto& probe : probes) results.push_back(probe.report);
  std::vector<std::string> written;
  // One heatmap per variant: the mean over its checkpoints (seeds); one checkpoint keeps the plain stem.
  for (const auto& variant : variants) {
    const size_t layers = probes[variant.runs[0]].mass.size(), heads = probes[variant.runs[0]].mass[0].size();
    std::vector<std::vector<double>> grid(layers, std::vector<double>(heads, 0));
    json members = json::array();
    for (size_t c : variant.runs) {
      if (probes[c].mass.size() != layers || probes[c].mass[0].size() != heads)
        throw UsageError("attention: " + probes[c].label + " and " + probes[variant.runs[0]].label +
                         " have the same config but different shapes");
      for (size_t l = 0; l < layers; ++l)
        for (size_t h = 0; h < heads; ++h)
          grid[l][h] += probes[c].mass[l][h] / static_cast<double>(variant.runs.size());
      results[c]["variant"] = variant.name;
      members.push_back(c);
    }
    variants_json.push_back({{"name", variant.name}, {"checkpoints", members}, {"mass", grid}});
    const std::string name = variant.runs.size() == 1 ? probes[variant.runs[0]].label : variant.name;
    double hi = 1e-6;
    for (const auto& row : grid) hi = std::max(hi, *std::max_element(row.begin(), row.end()));
    Heatmap heatmap;
    heatmap.title = "Attention on the needle: " + name;
    char note[200];
    std::snprintf(
        note, sizeof note, "final query, length %lld, depth %.2f, %d trial(s)%s", static_cast<long long>(args.length),
        args.depth, args.trials,
        variant.runs.size() > 1 ? (", mean over " + std::to_string(variant.runs.size()) + " runs").c_str() : "");
    heatmap.note = note;
    heatmap.row_label = "layer";
    heatmap.column_label = "head";
    for (size_t l = 0; l < layers; ++l) heatmap.rows.push_back(std::to_string(l));
    for (size_t h = 0; h < heads; ++h) heatmap.columns.push_back(std::to_string(h));
    heatmap.values = grid;
    heatmap.lo = 0;
    heatmap.hi = hi;
    heatmap.format = "%.3f";
    const std::string file = variants.size() == 1 ? stem : stem + "_" + file_safe(name);
    const auto plots = write_heatmap(heatmap, (fs::path(out_dir) / file).string());
    written.insert(written.end(), plots.begin(), plots.end());
  }
  const json report = {
      {"length", args.length},
      {"depth", args.depth},
      {"trials", args.trials},
      {"seed", args.seed},
      {"results", results},
      {"variants", variants_json},
      {"layout", "mass is [layer][head], the mean over trials of the final query's weights on the needle"}};
  const std::string json_path = (fs::path(out_dir) / (stem + ".json")).string();
  write_file_atomic(json_path, report.dump(2) + "\n");
  spdlog::info("wrote {}, {}", json_path, join(written));
  return 0;
}

}  // namespace ssmax
