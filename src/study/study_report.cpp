#include "study/study_report_builder.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>

#include "config/config.h"
#include "report/heatmap.h"
#include "report/plot.h"
#include "util/text.h"

namespace ssmax {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// The x ticks of a by-length figure: every length evaluated and the training length its marker stands at.
std::vector<double> length_ticks(const std::vector<int64_t>& lengths, int64_t training_length) {
  std::vector<double> ticks(lengths.begin(), lengths.end());
  if (training_length > 0) ticks.push_back(static_cast<double>(training_length));
  std::sort(ticks.begin(), ticks.end());
  ticks.erase(std::unique(ticks.begin(), ticks.end()), ticks.end());
  return ticks;
}

}  // namespace

PooledNeedle StudyReportBuilder::pool_needle(size_t variant) const {
  const NeedleSpec& spec = *spec_.needle;
  PooledNeedle pooled;
  pooled.successes.assign(spec.depths.size(), std::vector<double>(spec.lengths.size(), 0));
  pooled.trials = pooled.successes;
  pooled.per_seed_by_length.assign(spec.lengths.size(), {});
  for (size_t r = 0; r < runs_.size(); ++r) {
    const auto& needle = results_[r].needle;
    if (runs_[r].variant != variant || !needle) continue;
    pooled.any = true;
    pooled.block_size = needle->block_size;
    double seed_sum = 0, seed_cells = 0;
    for (size_t d = 0; d < spec.depths.size(); ++d)
      for (size_t l = 0; l < spec.lengths.size(); ++l) {
        const double successes = std::round(needle->exact[d][l] * needle->trials);
        pooled.successes[d][l] += successes;
        pooled.trials[d][l] += needle->trials;
        if (spec.lengths[l] > needle->block_size) {
          pooled.beyond_successes += successes;
          pooled.beyond_trials += needle->trials;
          seed_sum += needle->exact[d][l];
          ++seed_cells;
        }
      }
    if (seed_cells > 0) pooled.beyond_per_seed.push_back(seed_sum / seed_cells);
    for (size_t l = 0; l < spec.lengths.size(); ++l) {
      double sum = 0;
      for (size_t d = 0; d < spec.depths.size(); ++d) sum += needle->exact[d][l];
      pooled.per_seed_by_length[l].push_back(sum / static_cast<double>(spec.depths.size()));
    }
  }
  return pooled;
}

// Writes figures/<stem>.{png,svg}; returns the PNG's path relative to the study directory.
std::string StudyReportBuilder::save(const std::string& stem,
                                     const std::function<std::vector<std::string>(const std::string&)>& write) {
  const auto written = write((fs::path(spec_.out_dir) / "figures" / stem).string());
  files_.insert(files_.end(), written.begin(), written.end());
  return "figures/" + stem + ".png";
}

// One line per variant: the mean over seeds at each x, band ± one std (where two seeds or more have a value).
PlotSeries StudyReportBuilder::mean_std_series(size_t variant, const std::vector<double>& x,
                                               const std::vector<std::vector<double>>& ys) {
  PlotSeries series;
  series.label = names_[variant];
  series.color = variant;
  for (size_t i = 0; i < x.size(); ++i) {
    if (ys[i].empty()) continue;
    const double m = mean(ys[i]), s = ys[i].size() > 1 ? sample_std(ys[i]) : 0;
    series.x.push_back(x[i]);
    series.y.push_back(m);
    series.lo.push_back(m - s);
    series.hi.push_back(m + s);
  }
  return series;
}

DocumentSection StudyReportBuilder::overview(size_t done, size_t total) const {
  std::vector<std::string> seeds;
  for (uint64_t s : spec_.seeds) seeds.push_back(std::to_string(s));
  DocumentSection section{"Overview", {}};
  if (spec_.document.contains("description") && spec_.document["description"].is_string())
    section.text(spec_.document["description"].get<std::string>());
  section.text("Variants " + join(names_) + " (baseline " + spec_.baseline + "); seeds " + join(seeds) +
               "; base config " + spec_.config_path + "; study file " + spec_.path + ".");
  section.text(done == total ? "Status: complete (" + std::to_string(total) + " tasks)."
                             : "Status: PARTIAL — " + std::to_string(done) + " of " + std::to_string(total) +
                                   " tasks done; missing results show as –. Run `ssmax-gpt study " + spec_.path +
                                   "` again to continue.");
  section.text("Statistics: mean ± sample standard deviation over seeds. Each difference is tested with Welch's t-test "
               "over seeds; the " +
               std::to_string(family_.size()) +
               " tests of this report form one family, Holm–Bonferroni-adjusted: a difference is called significant "
               "only when its adjusted p ≤ α = " +
               short_number(spec_.alpha) +
               ". Needle rates: the seed is the unit — each seed's rate, then their mean with a 95 % t interval over "
               "seeds (the same needles recur in every cell and seed, so pooled prompts are not independent draws; "
               "pooled counts are shown as description only).");
  if (!warnings_.empty()) section.list(warnings_);
  return section;
}

DocumentSection StudyReportBuilder::pretraining() {
  DocumentSection section{"Pretraining", {}};
  DocumentTable finals{
      "Final losses (nats), mean ± std over seeds", {"variant", "seeds done", "validation", "train"}, {}};
  json variants = json::array();
  Figure figure;
  figure.title = "Pretraining loss";
  figure.note = "mean over seeds, band ± one std";
  for (const char* metric : {"val_loss", "train_loss"}) {
    PlotPanel panel;
    panel.x_label = "step";
    panel.y_label = std::string(metric == std::string("val_loss") ? "validation" : "training") + " loss (nats)";
    for (size_t v = 0; v < names_.size(); ++v) {
      std::vector<Curve> curves;
      for (size_t r = 0; r < runs_.size(); ++r)
        if (runs_[r].variant == v) {
          const Curve& c = metric == std::string("val_loss") ? results_[r].val_curve : results_[r].train_curve;
          if (!c.x.empty()) curves.push_back(c);
        }
      if (curves.empty()) continue;
      const AlignedCurve aligned = align_curves(curves);
      PlotSeries series{names_[v], aligned.x, aligned.mean, {}, {}, {}, v};
      for (size_t i = 0; i < aligned.x.size(); ++i) {
        const double s = std::isnan(aligned.std[i]) ? 0 : aligned.std[i];
        series.lo.push_back(aligned.mean[i] - s);
        series.hi.push_back(aligned.mean[i] + s);
      }
      panel.series.push_back(series);
    }
    figure.panels.push_back(panel);
  }
  for (size_t v = 0; v < names_.size(); ++v) {
    const auto val = values(v, final_val());
    const auto train = values(v, [](const RunResults& r) { return r.trained ? r.final_train_loss : std::nullopt; });
    finals.rows.push_back({names_[v], std::to_string(val.size()) + "/" + std::to_string(spec_.seeds.size()),
                           mean_std_text(val, 4), mean_std_text(train, 4)});
    variants.push_back(
        {{"name", names_[v]}, {"final_val_loss", stat_json(val)}, {"final_train_loss", stat_json(train)}});
  }
  summary_["variants"] = variants;
  section.add(finals);
  section.add(family_.table(training_tests_, "Pairwise differences of the final validation loss"));
  section.figure(save("pretraining_loss", [&](const std::string& stem) { return write_figure(figure, stem); }),
                 "Validation (top) and training loss by step: mean over seeds, band ± one std.");
  return section;
}

DocumentSection StudyReportBuilder::long_context() {
  const LongContextSpec& lc = *spec_.long_context;
  const int64_t block_size = load_config(spec_.config_path, runs_.front().overrides).model.block_size;
  DocumentSection section{"Long-context loss (the paper's Figure 5)", {}};
  Figure figure;
  figure.title = "Loss by evaluation length";
  figure.note = std::string(lc.finetuned ? "finetuned" : "pretrained") + " models; mean over seeds, band ± one std";
  json out = json::object();
  for (double scale : lc.rope_theta_scales) {
    // One column and one line per arm: each variant as trained, then with each inference-only scaling.
    const auto columns = arms();
    DocumentTable table{"Loss (nats) by length, RoPE θ × " + short_number(scale), {"length"}, {}};
    for (const auto& arm : columns) table.header.push_back(arm.name);
    PlotPanel panel;
    panel.title = "RoPE θ × " + short_number(scale);
    panel.x_label = "evaluation length (tokens)";
    panel.y_label = "loss (nats)";
    panel.log_x = true;
    std::vector<std::vector<std::vector<double>>> per_arm(columns.size());
    for (int64_t length : lc.lengths) {
      std::vector<std::string> row{std::to_string(length)};
      for (size_t a = 0; a < columns.size(); ++a) {
        const auto vals = values(columns[a].variant, long_context_loss(scale, length, columns[a].scaling));
        row.push_back(mean_std_text(vals, 4));
        per_arm[a].push_back(vals);
        out[short_number(scale)][std::to_string(length)][columns[a].name] = stat_json(vals);
      }
      table.rows.push_back(row);
    }
    std::vector<double> x(lc.lengths.begin(), lc.lengths.end());
    for (size_t a = 0; a < columns.size(); ++a) {
      PlotSeries series = mean_std_series(columns[a].variant, x, per_arm[a]);
      series.label = columns[a].name;
      series.color = a;
      panel.series.push_back(series);
    }
    panel.x_ticks = length_ticks(lc.lengths, block_size);
    panel.markers.push_back({static_cast<double>(block_size), "training length", kMarkerColor});
    figure.panels.push_back(panel);
    section.add(table);
  }
  summary_["long_context"] = out;
  section.add(family_.table(long_context_tests_, "Differences to " + spec_.baseline + " by length"));
  section.figure(save("long_context_loss", [&](const std::string& stem) { return write_figure(figure, stem); }),
                 "Loss by evaluation length, one panel per RoPE θ scale.");
  return section;
}

DocumentSection StudyReportBuilder::needle() {
  const NeedleSpec& ns = *spec_.needle;
  DocumentSection section{"Needle in a haystack (the paper's Figure 6)", {}};
  DocumentTable beyond{"Exact-match rate beyond the training length: mean of the seeds' rates [95 % t interval over "
                       "seeds]",
                       {"variant", "rate over seeds [95 % CI]", "per-seed mean ± std", "pooled (descriptive)"},
                       {}};
  json out = json::object();
  Figure figure;
  figure.title = "Needle retrieval by prompt length";
  figure.note = "exact match, mean over depths, then over seeds; band: 95 % t interval over seeds (none with 1 seed)";
  PlotPanel panel;
  panel.x_label = "prompt length (tokens)";
  panel.y_label = "exact-match rate";
  panel.log_x = true;
  for (size_t v = 0; v < names_.size(); ++v) {
    const PooledNeedle& p = needles_[v];
    beyond.rows.push_back({names_[v], seed_rate_text(p.beyond_per_seed), mean_std_text(p.beyond_per_seed, 3),
                           pooled_rate_text(p.beyond_successes, p.beyond_trials)});
    const Interval ci = rate_interval_over_seeds(p.beyond_per_seed);
    const auto number_or_null = [](double x) { return std::isnan(x) ? json(nullptr) : json(x); };
    out[names_[v]] = {
        {"beyond_successes", p.beyond_successes},
        {"beyond_trials", p.beyond_trials},
        {"beyond_pooled_rate", p.beyond_trials > 0 ? json(p.beyond_successes / p.beyond_trials) : json(nullptr)},
        {"beyond_rate", p.beyond_per_seed.empty() ? json(nullptr) : json(mean(p.beyond_per_seed))},
        {"beyond_ci95_over_seeds", {number_or_null(ci.lo), number_or_null(ci.hi)}},
        {"beyond_per_seed", p.beyond_per_seed},
        {"successes", p.successes},
        {"trials", p.trials}};
    if (!p.any) continue;
    PlotSeries series;
    series.label = names_[v];
    series.color = v;
    for (size_t l = 0; l < ns.lengths.size(); ++l) {
      const std::vector<double>& seeds = p.per_seed_by_length[l];
      const Interval ci_l = rate_interval_over_seeds(seeds);
      series.x.push_back(static_cast<double>(ns.lengths[l]));
      series.y.push_back(seeds.empty() ? std::nan("") : mean(seeds));
      series.lo.push_back(std::isnan(ci_l.lo) ? series.y.back() : ci_l.lo);
      series.hi.push_back(std::isnan(ci_l.hi) ? series.y.back() : ci_l.hi);
    }
    panel.series.push_back(series);
  }
  panel.x_ticks = length_ticks(ns.lengths, needles_[base_].block_size);
  if (needles_[base_].block_size > 0)
    panel.markers.push_back({static_cast<double>(needles_[base_].block_size), "training length", kMarkerColor});
  figure.panels.push_back(panel);
  summary_["needle"] = out;
  section.add(beyond);
  section.add(family_.table(needle_tests_,
                            "Differences to " + spec_.baseline + " of each seed's rate beyond the training length"));
  section.figure(save("needle_by_length", [&](const std::string& stem) { return write_figure(figure, stem); }),
                 "Needle retrieval by prompt length.");
  for (size_t v = 0; v < names_.size(); ++v) {
    if (!needles_[v].any) continue;
    DocumentTable grid{
        names_[v] + ": exact match by depth × length, pooled over seeds and trials (descriptive)", {"depth"}, {}};
    Heatmap heatmap;
    heatmap.title = "Needle exact match: " + names_[v];
    heatmap.note = "pooled over seeds and trials";
    heatmap.row_label = "needle depth";
    heatmap.column_label = "prompt length (tokens)";
    for (int64_t length : ns.lengths) {
      grid.header.push_back(std::to_string(length));
      heatmap.columns.push_back(std::to_string(length));
    }
    for (size_t d = 0; d < ns.depths.size(); ++d) {
      std::vector<std::string> row{fixed_text(ns.depths[d], 2)};
      heatmap.rows.push_back(fixed_text(ns.depths[d], 2));
      heatmap.values.emplace_back();
      for (size_t l = 0; l < ns.lengths.size(); ++l) {
        row.push_back(pooled_rate_text(needles_[v].successes[d][l], needles_[v].trials[d][l]));
        const double n = needles_[v].trials[d][l];
        heatmap.values.back().push_back(n > 0 ? needles_[v].successes[d][l] / n : std::nan(""));
      }
      grid.rows.push_back(row);
    }
    section.add(grid);
    section.figure(save("needle_" + names_[v], [&](const std::string& stem) { return write_heatmap(heatmap, stem); }),
                   names_[v] + ": exact-match rate by depth and length.");
  }
  return section;
}

}  // namespace ssmax
