// `needle`: retrieval of a 7-digit number hidden in held-out text, by length and depth, per checkpoint.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "data/needle_prompt.h"
#include "eval/eval_commands.h"
#include "eval/eval_model.h"
#include "eval/generate.h"
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

namespace {

// Learned positions must fit the prompt and the answer, and every length the needle and question of every trial:
// refused before any model runs (the tokenizer of each checkpoint's data sets the needle's size).
void precheck(const std::string& target, const NeedleArgs& args) {
  const CheckpointInfo info = open_checkpoint(target);
  const Config& config = info.config;
  const int64_t longest = *std::max_element(args.lengths.begin(), args.lengths.end());
  const int64_t limit = config.model.block_size + 1 - args.max_new_tokens;
  if (config.model.position == "learned" && longest > limit)
    throw UsageError("--lengths " + std::to_string(longest) + ": " + info.path +
                     " uses learned positions (block_size " + std::to_string(config.model.block_size) +
                     "), so prompts can be at most " + std::to_string(limit) +
                     " tokens to leave room for --max-new-tokens " + std::to_string(args.max_new_tokens));
  const PreparedDataset dataset = checkpoint_dataset(info.meta, info.path);
  const int64_t shortest = *std::min_element(args.lengths.begin(), args.lengths.end());
  check_needle_length(Tokenizer::load(dataset.tokenizer_model), "--lengths", shortest, args.seed, args.trials);
}

// One checkpoint's grid: [depth][length] exact-match rate and digit accuracy (means over the trials), and every case.
struct NeedleGrid {
  std::vector<std::vector<double>> exact, digits;
  json cases = json::array();
};

NeedleGrid measure_needle(EvalModel& m, const NeedleArgs& args) {
  const PreparedDataset dataset = eval_dataset(m);
  const Tokenizer tokenizer = Tokenizer::load(dataset.tokenizer_model);
  const TokenSource haystack = TokenSource::from_shards(dataset.val_shards);
  SamplingOptions greedy;
  greedy.temperature = 0;
  greedy.max_new_tokens = args.max_new_tokens;
  NeedleGrid grid;
  grid.exact.assign(args.depths.size(), std::vector<double>(args.lengths.size()));
  grid.digits = grid.exact;
  for (size_t li = 0; li < args.lengths.size(); ++li) {
    for (size_t di = 0; di < args.depths.size(); ++di) {
      for (int trial = 0; trial < args.trials; ++trial) {
        // The trial's seed alone picks word, number and haystack: every depth and length hides the same needle.
        const NeedlePrompt prompt =
            build_needle_prompt(tokenizer, haystack, args.lengths[li], args.depths[di], args.seed + trial);
        const std::vector<int64_t> ids(prompt.ids.begin(), prompt.ids.end());
        const auto generation = generate_tokens(m.model, ids, greedy, m.device);
        const std::string answer =
            tokenizer.decode(std::vector<uint32_t>(generation.tokens.begin(), generation.tokens.end()));
        const NeedleScore score = score_needle_answer(answer, prompt.number);
        grid.exact[di][li] += score.exact ? 1.0 / args.trials : 0.0;
        grid.digits[di][li] += score.digit_accuracy / args.trials;
        if (args.show_prompts && trial == 0)
          std::fprintf(stderr, "--- length %lld, depth %.2f, needle at tokens [%zu, %zu):\n%s\n--- answer: %s\n",
                       static_cast<long long>(args.lengths[li]), args.depths[di], prompt.needle_begin,
                       prompt.needle_end, tokenizer.decode(prompt.ids).c_str(), answer.c_str());
        grid.cases.push_back({{"length", args.lengths[li]},
                              {"depth", args.depths[di]},
                              {"actual_depth", prompt.depth},
                              {"needle_tokens", {prompt.needle_begin, prompt.needle_end}},
                              {"trial", trial},
                              {"word", prompt.word},
                              {"number", prompt.number},
                              {"answer", answer},
                              {"exact", score.exact},
                              {"digit_accuracy", score.digit_accuracy}});
      }
    }
    double row_exact = 0;
    for (size_t di = 0; di < args.depths.size(); ++di) row_exact += grid.exact[di][li] / args.depths.size();
    spdlog::info("{} length {}: exact match {:.0f}% over {} depths × {} trials", m.label, args.lengths[li],
                 100 * row_exact, args.depths.size(), args.trials);
  }
  return grid;
}

void print_needle_table(const std::string& label, const NeedleGrid& grid, const NeedleArgs& args) {
  std::printf("%s — exact match %% (digit accuracy %%), %d trial(s) per cell\n", label.c_str(), args.trials);
  std::printf("%8s", "depth");
  for (int64_t length : args.lengths) std::printf(" %14lld", static_cast<long long>(length));
  std::printf("\n");
  for (size_t di = 0; di < args.depths.size(); ++di) {
    std::printf("%8.2f", args.depths[di]);
    for (size_t li = 0; li < args.lengths.size(); ++li) {
      char cell[32];
      std::snprintf(cell, sizeof cell, "%.0f (%.0f)", 100 * grid.exact[di][li], 100 * grid.digits[di][li]);
      std::printf(" %14s", cell);
    }
    std::printf("\n");
  }
  std::fflush(stdout);
}

// One heatmap per variant (checkpoints whose configs differ only in seed, name and out_dir): the mean over them. Marks
// each result with its variant; returns the files written.
std::vector<std::string> write_needle_heatmaps(const NeedleArgs& args, const std::string& out_dir,
                                               const std::vector<NeedleGrid>& grids,
                                               const std::vector<std::string>& labels, const std::vector<json>& configs,
                                               const std::vector<int64_t>& block_sizes, json& results) {
  std::vector<std::string> written;
  for (const auto& variant : group_configs(configs)) {
    const std::string name = variant.runs.size() == 1 ? labels[variant.runs[0]] : variant.name;
    Heatmap heatmap;
    heatmap.title = "Needle retrieval: " + name;
    heatmap.note = "exact-match rate over " + std::to_string(args.trials) + " trial(s)" +
                   (variant.runs.size() > 1 ? ", mean over " + std::to_string(variant.runs.size()) + " runs" : "") +
                   "; block_size " + std::to_string(block_sizes[variant.runs[0]]);
    heatmap.row_label = "needle depth";
    heatmap.column_label = "context length (tokens)";
    for (double depth : args.depths) {
      char text[16];
      std::snprintf(text, sizeof text, "%.2f", depth);
      heatmap.rows.push_back(text);
    }
    for (int64_t length : args.lengths) heatmap.columns.push_back(std::to_string(length));
    heatmap.values.assign(args.depths.size(), std::vector<double>(args.lengths.size(), 0));
    for (size_t c : variant.runs)
      for (size_t d = 0; d < args.depths.size(); ++d)
        for (size_t l = 0; l < args.lengths.size(); ++l)
          heatmap.values[d][l] += grids[c].exact[d][l] / static_cast<double>(variant.runs.size());
    for (size_t c : variant.runs) results[c]["variant"] = variant.name;
    const auto plots = write_heatmap(heatmap, (fs::path(out_dir) / ("needle_" + file_safe(name))).string());
    written.insert(written.end(), plots.begin(), plots.end());
  }
  return written;
}

}  // namespace

int run_needle(const NeedleArgs& args) {
  check_arguments(args);
  for (const auto& target : args.checkpoints) precheck(target, args);
  const Evaluation evaluation(args.runtime, args.swap, args.checkpoints);
  std::string out_dir = args.out_dir;
  json results = json::array();
  std::vector<NeedleGrid> grids;
  std::vector<std::string> labels;
  std::vector<json> configs;
  std::vector<int64_t> block_sizes;
  for (const auto& target : args.checkpoints) {
    EvalModel m = load_eval_model(target, evaluation.load);
    if (out_dir.empty()) out_dir = (fs::path(m.run_dir) / "needle").string();
    fs::create_directories(out_dir);
    NeedleGrid grid = measure_needle(m, args);
    print_needle_table(m.label, grid, args);
    results.push_back({{"label", m.label},
                       {"checkpoint", m.checkpoint},
                       {"step", m.meta.step},
                       {"block_size", m.block_size()},
                       {"position", m.config.model.position},
                       {"normalizer", normalizer_name(m.config.model.attention.normalizer)},
                       {"exact", grid.exact},
                       {"digit_accuracy", grid.digits},
                       {"cases", grid.cases}});
    grids.push_back(std::move(grid));
    labels.push_back(m.label);
    configs.push_back(config_to_json(m.config));
    block_sizes.push_back(m.block_size());
  }
  const auto written = write_needle_heatmaps(args, out_dir, grids, labels, configs, block_sizes, results);
  const json report = {{"lengths", args.lengths},
                       {"depths", args.depths},
                       {"trials", args.trials},
                       {"seed", args.seed},
                       {"max_new_tokens", args.max_new_tokens},
                       {"layout", "exact and digit_accuracy are [depth][length]"},
                       {"results", results}};
  const std::string json_path = (fs::path(out_dir) / kNeedleReport).string();
  write_file_atomic(json_path, report.dump(2) + "\n");
  std::string files = json_path;
  for (const auto& path : written) files += ", " + path;
  spdlog::info("wrote {}", files);
  return 0;
}

}  // namespace ssmax
