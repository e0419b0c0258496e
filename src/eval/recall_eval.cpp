// `recall`: the recall task (data/recall_task.h) at several context lengths — accuracy, answer loss and where the
// attention of each query goes — for one or more checkpoints; table, JSON, plot.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "data/recall_task.h"
#include "eval/eval_commands.h"
#include "eval/eval_model.h"
#include "report/plot.h"
#include "report/run_data.h"
#include "report/stats.h"
#include "run/device.h"
#include "train/precision.h"
#include "util/errors.h"
#include "util/files.h"

namespace ssmax {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

struct RecallScore {
  int64_t length = 0, pairs = 0, answers = 0;
  double accuracy = 0, loss = 0;
  // [layer][head]: attention mass of a query on the pair it asks for (mode "token": on its key and value tokens),
  // mean over queries; and what uniform attention over the keys a query sees would give
  std::vector<std::vector<double>> mass;
  double uniform_mass = 0;
  double best_head_mass() const {
    double best = 0;
    for (const auto& layer : mass) best = std::max(best, *std::max_element(layer.begin(), layer.end()));
    return best;
  }
};

// The attention weights of every layer for `batch` sequences of `length` tokens, at most ~256 MB of them at once.
int64_t forward_batch(const RecallArgs& args, const ModelConfig& model, int64_t length) {
  const double weights = static_cast<double>(model.n_layer) * model.n_head * length * length;
  return std::clamp<int64_t>(static_cast<int64_t>(64e6 / weights), 1, args.batch_size);
}

RecallScore score_length(EvalModel& m, const RecallTask& task, const RecallArgs& args, int64_t length) {
  torch::NoGradGuard no_grad;
  const int64_t layers = m.config.model.n_layer, heads = m.config.model.n_head, Q = task.queries();
  const int64_t span = task.mode() == "pair" ? 1 : 2;  // tokens of the pair a query asks for
  RecallScore score;
  score.length = length;
  score.pairs = task.pairs_for_length(length);
  auto mass = torch::zeros({layers, heads}, torch::kDouble);
  double loss_sum = 0, correct = 0, uniform = 0;
  const int64_t per_batch = forward_batch(args, m.config.model, length);
  for (int64_t done = 0, index = 0; done < args.sequences; done += per_batch, ++index) {
    const int64_t B = std::min<int64_t>(per_batch, args.sequences - done);
    const RecallBatch batch = task.evaluation_batch(args.seed, length, index, B);
    std::vector<torch::Tensor> weights;
    const auto rows = batch.answer_rows.to(m.device);
    const auto logits = m.model->logits_at(batch.inputs.to(m.device), rows, &weights).to(torch::kCPU, torch::kFloat);
    loss_sum += torch::nn::functional::cross_entropy(
                    logits, batch.answers, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .item<double>();
    correct += logits.argmax(-1).eq(batch.answers).sum().item<double>();
    // Each query row's weights on its pair: gather [B, H, Q, L] rows, then the pair's column(s).
    const auto query_rows = batch.query_positions.view({B, 1, Q, 1}).expand({B, heads, Q, length}).to(m.device);
    for (int64_t layer = 0; layer < layers; ++layer) {
      const auto rows_of_queries = weights[layer].gather(2, query_rows).to(torch::kCPU, torch::kDouble);
      auto on_pair = torch::zeros({B, heads, Q}, torch::kDouble);
      for (int64_t j = 0; j < span; ++j)
        on_pair += rows_of_queries.gather(3, (batch.pair_positions + j).view({B, 1, Q, 1}).expand({B, heads, Q, 1}))
                       .squeeze(3);
      mass[layer] += on_pair.sum(std::vector<int64_t>{0, 2});
    }
    uniform += (static_cast<double>(span) / (batch.query_positions.to(torch::kDouble) + 1)).sum().item<double>();
    score.answers += B * Q;
  }
  mass /= static_cast<double>(score.answers);
  score.accuracy = correct / static_cast<double>(score.answers);
  score.loss = loss_sum / static_cast<double>(score.answers);
  score.uniform_mass = uniform / static_cast<double>(score.answers);
  score.mass.assign(layers, std::vector<double>(heads));
  for (int64_t l = 0; l < layers; ++l)
    for (int64_t h = 0; h < heads; ++h) score.mass[l][h] = mass[l][h].item<double>();
  return score;
}

struct Row {
  size_t checkpoint;
  std::string label;
  RecallScore score;
};

// The checkpoints and lengths, checked before the first model is loaded: every target trained on the task, and every
// length one the task can make (a key appears once in a sequence).
std::vector<int64_t> resolve_lengths(const RecallArgs& args, const EvalLoadOptions& load) {
  std::vector<int64_t> lengths = args.lengths;
  for (size_t i = 0; i < args.checkpoints.size(); ++i) {
    CheckpointInfo info = open_checkpoint(args.checkpoints[i]);
    if (info.config.data.task != "mqar")
      throw UsageError("recall: " + info.path + " was trained on text (data.task = \"" + info.config.data.task +
                       "\"); `recall` evaluates models trained with data.task = \"mqar\" (`ssmax-gpt eval` and "
                       "`needle` evaluate text models)");
    swap_normalizer(info.config, load, info.path);
    const RecallTask task(info.config.data, info.config.model.block_size);
    if (lengths.empty()) {
      for (int64_t multiple : {1, 2, 4, 8, 16}) {
        const int64_t length = multiple * info.config.model.block_size;
        if (task.pairs_for_length(length) <= task.keys()) lengths.push_back(length);
        else
          spdlog::info("recall: leaving out {} tokens ({}× the training length): it needs {} pairs, more than "
                       "data.mqar.keys = {}",
                       length, multiple, task.pairs_for_length(length), task.keys());
      }
    }
    if (info.config.model.position == "learned")
      for (int64_t length : lengths)
        if (length > info.config.model.block_size)
          throw UsageError("--lengths " + std::to_string(length) + ": " + info.path +
                           " uses learned positions and cannot go beyond model.block_size = " +
                           std::to_string(info.config.model.block_size));
    for (int64_t length : lengths) task.evaluation_batch(args.seed, length, 0, 1);  // refuses an impossible length
  }
  return lengths;
}

void print_table(const std::vector<Row>& rows) {
  size_t width = 10;
  for (const auto& row : rows) width = std::max(width, row.label.size());
  std::printf("%-*s  length  pairs  accuracy    loss  best-head mass  (uniform)\n", static_cast<int>(width),
              "checkpoint");
  for (const auto& row : rows) {
    const RecallScore& s = row.score;
    std::printf("%-*s  %6lld %6lld  %8.3f %7.3f  %14.3f  (%7.4f)\n", static_cast<int>(width), row.label.c_str(),
                static_cast<long long>(s.length), static_cast<long long>(s.pairs), s.accuracy, s.loss,
                s.best_head_mass(), s.uniform_mass);
  }
  std::printf("accuracy: answers right (argmax); best-head mass: the attention a query puts on the pair it asks for, "
              "in the head that puts the most there (mean over queries); uniform: what equal attention would put.\n");
  std::fflush(stdout);
}

// Two panels, one line per variant (mean over its checkpoints, band ± one std): accuracy and best-head mass.
Figure recall_figure(const std::vector<Row>& rows, const std::vector<Variant>& variants,
                     const std::vector<int64_t>& lengths, int64_t block_size) {
  Figure figure;
  figure.title = "Recall by context length";
  figure.panel_height = 420;
  const std::pair<const char*, double (*)(const RecallScore&)> measures[] = {
      {"accuracy", [](const RecallScore& s) { return s.accuracy; }},
      {"attention mass on the right pair (best head)", [](const RecallScore& s) { return s.best_head_mass(); }}};
  for (const auto& [name, value] : measures) {
    PlotPanel panel;
    panel.title = name;
    panel.x_label = "context length (tokens)";
    panel.y_label = name;
    panel.log_x = true;
    for (int64_t length : lengths) panel.x_ticks.push_back(static_cast<double>(length));
    for (size_t v = 0; v < variants.size(); ++v) {
      PlotSeries series;
      series.label = variants[v].name +
                     (variants[v].runs.size() > 1 ? " [" + std::to_string(variants[v].runs.size()) + " runs]" : "");
      series.color = v;
      for (int64_t length : lengths) {
        std::vector<double> values;
        for (const auto& row : rows)
          if (row.score.length == length &&
              std::count(variants[v].runs.begin(), variants[v].runs.end(), row.checkpoint))
            values.push_back(value(row.score));
        if (values.empty()) continue;
        const double m = mean(values), sd = values.size() > 1 ? sample_std(values) : 0;
        series.x.push_back(static_cast<double>(length));
        series.y.push_back(m);
        if (variants[v].runs.size() > 1) series.lo.push_back(m - sd), series.hi.push_back(m + sd);
      }
      panel.series.push_back(series);
    }
    panel.markers.push_back({static_cast<double>(block_size), "training length", kMarkerColor});
    figure.panels.push_back(panel);
  }
  return figure;
}

}  // namespace

int run_recall(const RecallArgs& args) {
  check_arguments(args);
  const Evaluation evaluation(args.runtime, args.swap, args.checkpoints, args.rope_theta, args.rope_theta_scale);
  const EvalLoadOptions& load = evaluation.load;
  const std::vector<int64_t> lengths = resolve_lengths(args, load);

  std::string out_dir = args.out_dir;
  std::vector<Row> rows;
  std::vector<json> configs;
  json results = json::array();
  int64_t block_size = 0;
  for (size_t target = 0; target < args.checkpoints.size(); ++target) {
    EvalModel m = load_eval_model(args.checkpoints[target], load);
    if (out_dir.empty()) out_dir = (fs::path(m.run_dir) / "recall").string();
    if (!block_size) block_size = m.block_size();
    const RecallTask task(m.config.data, m.block_size());
    spdlog::info("{}: {} ({}, {} positions, trained on {} tokens)", m.label, m.checkpoint, task.fingerprint(),
                 m.config.model.position, m.block_size());
    for (int64_t length : lengths) {
      const auto start = std::chrono::steady_clock::now();
      RecallScore score = score_length(m, task, args, length);
      spdlog::info("  {} tokens ({} pairs): accuracy {:.3f}, loss {:.3f}, best-head mass {:.3f} ({:.1f}s)", length,
                   score.pairs, score.accuracy, score.loss, score.best_head_mass(),
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      results.push_back({{"label", m.label},
                         {"checkpoint", m.checkpoint},
                         {"run_dir", m.run_dir},
                         {"step", m.meta.step},
                         {"seed", m.config.seed},
                         {"block_size", m.block_size()},
                         {"position", m.config.model.position},
                         {"normalizer", normalizer_name(m.config.model.attention.normalizer)},
                         {"normalizer_swapped_in", args.swap.normalizer.has_value()},
                         {"length", length},
                         {"pairs", score.pairs},
                         {"answers", score.answers},
                         {"accuracy", score.accuracy},
                         {"loss", score.loss},
                         {"attention_mass", score.mass},
                         {"best_head_mass", score.best_head_mass()},
                         {"uniform_mass", score.uniform_mass}});
      rows.push_back({configs.size(), m.label, std::move(score)});
    }
    configs.push_back(config_to_json(m.config));
  }
  print_table(rows);
  const auto variants = group_configs(configs);
  json variants_json = json::array();
  for (const auto& variant : variants) {
    json members = json::array();
    for (size_t c : variant.runs) members.push_back(c);
    variants_json.push_back({{"name", variant.name}, {"checkpoints", members}});
    for (size_t i = 0; i < rows.size(); ++i)
      if (std::count(variant.runs.begin(), variant.runs.end(), rows[i].checkpoint))
        results[i]["variant"] = variant.name;
  }
  fs::create_directories(out_dir);
  const json report = {
      {"lengths", lengths},
      {"sequences", args.sequences},
      {"seed", args.seed},
      {"attention_mass", "per layer and head, the mean over queries of the attention weight a query puts on the pair "
                         "it asks for (mode token: on its key and value tokens)"},
      {"variants", variants_json},
      {"results", results}};
  const std::string json_path = (fs::path(out_dir) / kRecallReport).string();
  write_file_atomic(json_path, report.dump(2) + "\n");
  std::string written = json_path;
  for (const auto& plot :
       write_figure(recall_figure(rows, variants, lengths, block_size), (fs::path(out_dir) / "recall").string()))
    written += ", " + plot;
  spdlog::info("wrote {}", written);
  return 0;
}

}  // namespace ssmax
