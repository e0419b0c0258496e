// `eval`: validation loss by position at several lengths, for one or more checkpoints; table, JSON, plot.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "eval/eval_commands.h"
#include "eval/length_eval.h"
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

// Refuses impossible settings before any model is evaluated, so a long run does not fail halfway.
void check_positions(const CheckpointInfo& info, const LengthEvalArgs& args) {
  const Config& config = info.config;
  if (config.model.position != "learned") return;
  const int64_t longest = *std::max_element(args.lengths.begin(), args.lengths.end());
  if (longest > config.model.block_size)
    throw UsageError("--lengths " + std::to_string(longest) + ": " + info.path +
                     " uses learned positions and cannot go beyond model.block_size = " +
                     std::to_string(config.model.block_size) + " (evaluate lengths <= block_size, or a RoPE model)");
  if (args.rope_theta || args.rope_theta_scale)
    throw UsageError("--rope-theta/--rope-theta-scale apply to RoPE models only; " + info.path +
                     " uses learned positions");
}

// The tokens each target is evaluated on (the --text encoded once per tokenizer, or its run's validation split),
// all checked to hold one window of the longest length before the first model is loaded.
std::vector<TokenSource> eval_sources(const LengthEvalArgs& args, const EvalLoadOptions& load) {
  const std::string text = args.text_file.empty() ? std::string() : read_file(args.text_file);
  // An empty --text must not fall back to the validation split: a loss that looks right for the wrong text.
  if (!args.text_file.empty() && text.empty())
    throw UsageError("--text " + args.text_file +
                     ": the file is empty (give a text to evaluate on, or leave --text out for the run's validation "
                     "split)");
  const int64_t longest = *std::max_element(args.lengths.begin(), args.lengths.end());
  const std::string window =
      "one window at --lengths " + std::to_string(longest) + " (" + std::to_string(longest + 1) + " tokens)";
  std::map<std::string, TokenSource> encoded;  // by tokenizer model file
  std::vector<TokenSource> sources;
  for (const auto& target : args.checkpoints) {
    CheckpointInfo info = open_checkpoint(target);
    swap_normalizer(info.config, load, info.path);
    check_positions(info, args);
    const PreparedDataset dataset = checkpoint_dataset(info.meta, info.path);
    if (args.text_file.empty()) {
      sources.push_back(TokenSource::from_shards(dataset.val_shards, dataset.val_documents));
      if (static_cast<int64_t>(sources.back().size()) <= longest)
        throw UsageError("--lengths " + std::to_string(longest) + ": the validation split of " + info.path + " holds " +
                         std::to_string(sources.back().size()) + " tokens, fewer than " + window +
                         "; evaluate shorter lengths or give a longer --text");
      continue;
    }
    auto found = encoded.find(dataset.tokenizer_model);
    if (found == encoded.end()) {
      auto ids = Tokenizer::load(dataset.tokenizer_model).encode(text);
      found = encoded.emplace(dataset.tokenizer_model, TokenSource::from_ids(std::move(ids), args.text_file)).first;
    }
    sources.push_back(found->second);
    if (static_cast<int64_t>(sources.back().size()) <= longest)
      throw UsageError("--text " + args.text_file + ": " + std::to_string(sources.back().size()) +
                       " tokens with the tokenizer of " + info.path + ", fewer than " + window +
                       "; give a longer text or shorter --lengths");
  }
  return sources;
}

std::string cell(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%7.3f", value);
  return text;
}

struct Row {
  size_t checkpoint;  // index into the checkpoints
  std::string label;
  int64_t length, windows, block_size;
  double loss;
  std::vector<LossBin> bins;
};

// One panel per length, one line per variant: the mean over its checkpoints (seeds) with a band ± one std, so nine
// runs at four lengths read as three lines in four panels rather than 36 lines in recycled colours.
Figure variant_figure(const std::vector<Row>& rows, const std::vector<Variant>& variants,
                      const std::vector<int64_t>& lengths, const std::set<int64_t>& block_sizes) {
  Figure figure;
  figure.title = "Loss by position";
  figure.note = variants.size() < rows.size() / std::max<size_t>(lengths.size(), 1)
                    ? "; lines: mean over a variant's checkpoints (seeds), band ± one std"
                    : "";
  if (lengths.size() > 2) figure.panel_height = 380;
  for (int64_t length : lengths) {
    PlotPanel panel;
    panel.title = "evaluated at " + std::to_string(length) + " tokens";
    panel.x_label = "position (tokens of context)";
    panel.y_label = "loss (nats), mean over [p, 2p)";
    panel.log_x = true;
    for (size_t v = 0; v < variants.size(); ++v) {
      std::vector<const Row*> members;
      for (const auto& row : rows)
        if (row.length == length && std::count(variants[v].runs.begin(), variants[v].runs.end(), row.checkpoint))
          members.push_back(&row);
      if (members.empty()) continue;
      PlotSeries series;
      series.label = variants[v].name + (members.size() > 1 ? " [" + std::to_string(members.size()) + " runs]" : "");
      series.color = v;
      for (size_t b = 0; b < members[0]->bins.size(); ++b) {
        std::vector<double> losses;
        for (const Row* row : members) losses.push_back(row->bins[b].loss);
        const LossBin& bin = members[0]->bins[b];
        const double m = mean(losses), sd = losses.size() > 1 ? sample_std(losses) : 0;
        series.x.push_back(std::sqrt(static_cast<double>(bin.lo) * static_cast<double>(bin.hi - 1)));
        series.y.push_back(m);
        if (members.size() > 1) series.lo.push_back(m - sd), series.hi.push_back(m + sd);
      }
      panel.series.push_back(series);
    }
    for (int64_t block_size : block_sizes)
      panel.markers.push_back(
          {static_cast<double>(block_size), "block_size " + std::to_string(block_size), kMarkerColor});
    figure.panels.push_back(panel);
  }
  return figure;
}

void print_table(const std::vector<Row>& rows) {
  int64_t longest = 0;
  size_t label_width = 10;
  for (const auto& row : rows)
    longest = std::max(longest, row.length), label_width = std::max(label_width, row.label.size());
  std::string header = "checkpoint" + std::string(label_width - 10, ' ') + "  length windows    loss";
  for (int64_t lo = 1; lo <= longest; lo *= 2) {
    char text[32];
    std::snprintf(text, sizeof text, " %7s",
                  (lo < 1000 ? std::to_string(lo) : std::to_string(lo / 1024) + "k").c_str());
    header += text;
  }
  std::printf("%s\n", header.c_str());
  for (const auto& row : rows) {
    char text[64];
    std::snprintf(text, sizeof text, "  %6lld %7lld %s", static_cast<long long>(row.length),
                  static_cast<long long>(row.windows), cell(row.loss).c_str());
    std::string line = row.label + std::string(label_width - row.label.size(), ' ') + text;
    for (const auto& bin : row.bins) line += " " + cell(bin.loss) + (bin.hi - 1 > row.block_size ? "*" : "");
    std::printf("%s\n", line.c_str());
  }
  std::printf("Columns after loss: positions [p, 2p), token-weighted mean loss (nats); * = reaches beyond the training "
              "length (model.block_size).\n");
  std::fflush(stdout);
}

}  // namespace

int run_length_eval(const LengthEvalArgs& args) {
  check_arguments(args);
  const Evaluation evaluation(args.runtime, args.swap, args.checkpoints, args.rope_theta, args.rope_theta_scale);
  const EvalLoadOptions& load = evaluation.load;
  const std::vector<TokenSource> sources = eval_sources(args, load);

  std::string out_dir = args.out_dir;
  std::vector<Row> rows;
  json results = json::array();
  std::vector<json> configs;  // per checkpoint, to group them into variants
  std::set<int64_t> block_sizes;

  for (size_t target = 0; target < args.checkpoints.size(); ++target) {
    EvalModel m = load_eval_model(args.checkpoints[target], load);
    if (out_dir.empty()) out_dir = (fs::path(m.run_dir) / "eval").string();
    const TokenSource& source = sources[target];
    block_sizes.insert(m.block_size());
    spdlog::info("{}: {} ({} positions, block_size {}, {} tokens to draw from)", m.label, m.checkpoint,
                 m.config.model.position, m.block_size(), source.size());
    for (int64_t length : args.lengths) {
      const auto start = std::chrono::steady_clock::now();
      auto last_report = start;
      auto progress = [&](int64_t done, int64_t total) {
        const auto now = std::chrono::steady_clock::now();
        if (now - last_report < std::chrono::seconds(10) || done == total) return;
        last_report = now;
        spdlog::info("  length {}: {}/{} windows", length, done, total);
      };
      const PositionLoss losses = position_losses(m.model, source, length, args.windows, m.device, progress);
      const auto bins = log_bins(losses);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      spdlog::info("  length {}: loss {:.4f} over {} windows ({:.1f}s)", length, losses.overall(), losses.windows,
                   seconds);
      rows.push_back({configs.size(), m.label, length, losses.windows, m.block_size(), losses.overall(), bins});

      json bin_json = json::array();
      for (const auto& bin : bins)
        bin_json.push_back({{"lo", bin.lo}, {"hi", bin.hi}, {"tokens", bin.tokens}, {"loss", bin.loss}});
      json per_position = json::array();  // null where no document of the source reaches the position
      int64_t tokens = 0;
      for (int64_t p = 1; p <= length; ++p) {
        per_position.push_back(losses.count[p - 1] > 0 ? json(losses.at(p)) : json(nullptr));
        tokens += losses.count[p - 1];
      }
      results.push_back(
          {{"label", m.label},
           {"checkpoint", m.checkpoint},
           {"run_dir", m.run_dir},
           {"step", m.meta.step},
           {"block_size", m.block_size()},
           {"position", m.config.model.position},
           {"normalizer", normalizer_name(m.config.model.attention.normalizer)},
           {"normalizer_swapped_in", args.swap.normalizer.has_value()},
           {"s_init", args.swap.normalizer && has_learned_scale(*args.swap.normalizer)
                          ? json(m.config.model.attention.s_init)
                          : json(nullptr)},
           {"rope_theta", m.config.model.position == "rope" ? json(m.config.model.rope_theta) : json(nullptr)},
           {"length", length},
           {"windows", losses.windows},
           {"tokens", tokens},
           {"within_documents", losses.within_documents},
           {"loss", losses.overall()},
           {"bins", bin_json},
           {"position_loss", per_position}});
    }
    configs.push_back(config_to_json(m.config));
  }
  print_table(rows);
  const auto variants = group_configs(configs);
  std::vector<std::string> variant_of(configs.size());
  json variants_json = json::array();
  for (const auto& variant : variants) {
    json members = json::array();
    for (size_t c : variant.runs) variant_of[c] = variant.name, members.push_back(c);
    variants_json.push_back({{"name", variant.name}, {"checkpoints", members}});
  }
  for (size_t i = 0; i < rows.size(); ++i) results[i]["variant"] = variant_of[rows[i].checkpoint];

  fs::create_directories(out_dir);
  const json report = {
      {"source", args.text_file.empty() ? "validation split" : args.text_file},
      {"lengths", args.lengths},
      {"windows_requested", args.windows},
      {"position_convention",
       "position p (1-based) predicts token p+1 of a window from its first p tokens; where within_documents (a "
       "model trained with model.attention.document_mask), a token from the p tokens of its own document in the "
       "window"},
      {"variants", variants_json},
      {"results", results}};
  const std::string json_path = (fs::path(out_dir) / kLengthEvalReport).string();
  write_file_atomic(json_path, report.dump(2) + "\n");
  Figure figure = variant_figure(rows, variants, args.lengths, block_sizes);
  figure.note = (args.text_file.empty() ? "validation split" : "text: " + args.text_file) + figure.note;
  const auto plots = write_figure(figure, (fs::path(out_dir) / "eval_loss").string());
  std::string written = json_path;
  for (const auto& plot : plots) written += ", " + plot;
  spdlog::info("wrote {}", written);
  return 0;
}

}  // namespace ssmax
