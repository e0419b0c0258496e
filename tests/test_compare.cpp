// `compare`: statistics against hand-computed values, grouping by config difference, alignment and
// smoothing, the written report (PNG/SVG/CSV/JSON) and bad input, on synthetic run directories; and the
// report's drawing: plots and heatmaps as PNG and SVG.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>

#include "config/config.h"
#include "report/compare.h"
#include "report/heatmap.h"
#include "report/plot.h"
#include "report/run_data.h"
#include "report/stats.h"
#include "run/metrics.h"
#include "test_util.h"
#include "util/errors.h"
#include "util/files.h"

namespace ssmax {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

// A run directory as train leaves it: config.json, metrics.jsonl (a train record every 10 steps, an eval
// record every 25 with val_loss(step)), and the final checkpoint manifest when `finished`.
std::string write_run(const std::string& root, const std::string& name, Config config,
                      const std::function<double(int)>& val_loss, bool finished = true, int last_step = 100) {
  const std::string dir = root + "/" + name;
  config.name = name;
  config.out_dir = dir;
  config.train.max_steps = 100;
  fs::create_directories(dir + "/checkpoints");
  std::ofstream(dir + "/config.json") << config_to_json(config).dump(2);
  std::ofstream metrics(dir + "/metrics.jsonl");
  const bool ssmax = config.model.attention.normalizer != Normalizer::Softmax;
  for (int step = 10; step <= last_step; step += 5) {
    MetricsRecord r;
    r.step = step;
    r.tokens = step * 1000;
    r.elapsed_s = step * 0.5;
    if (ssmax) r.normalizer["s"] = {{0.4 + step * 1e-3, 0.5 + step * 1e-3}, {0.3, 0.35}};
    if (step % 10 == 0) {
      r.train_loss = val_loss(step) + 0.1;
      r.tokens_per_s = 2000;
      metrics << r.to_json().dump() << "\n";
    }
    if (step % 25 == 0) {
      r.train_loss.reset();
      r.tokens_per_s.reset();
      r.val_loss = val_loss(step);
      metrics << r.to_json().dump() << "\n";
    }
  }
  if (finished) std::ofstream(dir + "/checkpoints/step_00000100.json") << "{}";
  return dir;
}

// Loss falling linearly by 2 over the run to `final` at step 100.
std::function<double(int)> falling_to(double final_loss) {
  return [final_loss](int step) { return final_loss + 2.0 * (100 - step) / 100; };
}

Config variant(const std::string& normalizer, uint64_t seed, double s_init = 0.43) {
  Config c;
  c.model.attention.normalizer = *normalizer_from_name(normalizer);
  c.model.attention.s_init = s_init;
  c.seed = seed;
  return c;
}

std::vector<std::string> three_variants(const std::string& root) {
  std::vector<std::string> dirs;
  const double softmax[] = {3.0, 3.2, 3.4}, ssmax[] = {2.8, 2.9, 3.0}, ssmax_low[] = {2.7, 2.75, 2.8};
  for (int seed = 1; seed <= 3; ++seed) {
    dirs.push_back(
        write_run(root, "softmax-" + std::to_string(seed), variant("softmax", seed), falling_to(softmax[seed - 1])));
    dirs.push_back(
        write_run(root, "ssmax-" + std::to_string(seed), variant("ssmax", seed), falling_to(ssmax[seed - 1])));
    dirs.push_back(write_run(root, "ssmax-s02-" + std::to_string(seed), variant("ssmax", seed, 0.2),
                             falling_to(ssmax_low[seed - 1])));
  }
  return dirs;
}

uint32_t big_endian(const std::string& bytes, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = v << 8 | static_cast<unsigned char>(bytes[at + i]);
  return v;
}

// A PNG file: signature, then the IHDR chunk with width and height.
void expect_png(const std::string& path, uint32_t width, uint32_t height) {
  const std::string bytes = read_file(path);
  ASSERT_GT(bytes.size(), 33u) << path;
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8)) << path;
  EXPECT_EQ(bytes.substr(12, 4), "IHDR") << path;
  EXPECT_EQ(big_endian(bytes, 16), width) << path;
  EXPECT_EQ(big_endian(bytes, 20), height) << path;
}

// An SVG file: XML with an <svg> element; parsed for real when python3 is around.
void expect_svg(const std::string& path) {
  const std::string text = read_file(path);
  EXPECT_EQ(text.rfind("<?xml", 0), 0u) << path;
  EXPECT_NE(text.find("<svg"), std::string::npos) << path;
  EXPECT_NE(text.find("</svg>"), std::string::npos) << path;
  if (std::system("python3 -c 'import xml.dom.minidom' >/dev/null 2>&1") == 0) {
    const std::string command = "python3 -c 'import xml.dom.minidom,sys; xml.dom.minidom.parse(sys.argv[1])' " + path;
    EXPECT_EQ(std::system(command.c_str()), 0) << path << " is not well-formed XML";
  }
}

bool any_contains(const std::vector<std::string>& lines, const std::string& part) {
  for (const auto& line : lines)
    if (line.find(part) != std::string::npos) return true;
  return false;
}

TEST(Stats, MeanAndSampleStd) {
  EXPECT_DOUBLE_EQ(mean({3.0, 3.2, 3.4}), 3.2);
  EXPECT_NEAR(sample_std({3.0, 3.2, 3.4}), 0.2, 1e-12);  // squared deviations 0.04+0+0.04 over n-1 = 2
  EXPECT_TRUE(std::isnan(sample_std({1.0})));
  EXPECT_TRUE(std::isnan(mean({})));
}

TEST(Stats, StudentTTwoSidedP) {
  // Reference values by numerical integration of the t density (Simpson, 2e5 intervals).
  EXPECT_NEAR(student_t_two_sided_p(2.0, 10), 0.0733880, 1e-6);
  EXPECT_NEAR(student_t_two_sided_p(-2.0, 10), 0.0733880, 1e-6);
  EXPECT_NEAR(student_t_two_sided_p(3.0, 2.5), 0.0725761, 1e-6);
  EXPECT_NEAR(student_t_two_sided_p(1.0, 1), 0.5, 1e-12);  // Cauchy: 1 - 2·atan(1)/π
  EXPECT_NEAR(student_t_two_sided_p(0.0, 5), 1.0, 1e-12);
  EXPECT_NEAR(student_t_two_sided_p(50.0, 30), 0.0, 1e-12);
}

TEST(Stats, WelchTTestByHand) {
  // a = {3.0, 3.2, 3.4}: mean 3.2, var 0.04; b = {2.8, 2.9, 3.0}: mean 2.9, var 0.01.
  // se² = 0.04/3 + 0.01/3 = 1/60, t = (2.9-3.2)/sqrt(1/60) = -0.3·√60 = -2.32379,
  // df = (1/60)² / ((0.04/3)²/2 + (0.01/3)²/2) = 50/17 = 2.941176, two-sided p = 0.104479
  // (numerical integration of the t density with that df).
  const WelchResult w = welch_t_test({3.0, 3.2, 3.4}, {2.8, 2.9, 3.0});
  EXPECT_NEAR(w.diff, -0.3, 1e-12);
  ASSERT_TRUE(w.t && w.df && w.p);
  EXPECT_NEAR(*w.t, -0.3 * std::sqrt(60.0), 1e-9);
  EXPECT_NEAR(*w.df, 50.0 / 17.0, 1e-9);
  EXPECT_NEAR(*w.p, 0.104479, 1e-3);
  EXPECT_NEAR(*w.p, 0.1044789, 1e-6);
  // One run in a group, or no spread at all: no p.
  EXPECT_FALSE(welch_t_test({3.0}, {2.8, 2.9}).p);
  EXPECT_FALSE(welch_t_test({3.0, 3.0}, {2.0, 2.0}).p);
}

TEST(Stats, PairedTTestByHand) {
  // d = b − a = {1, 2, 2, 3}: mean 2, sd √(2/3), se = √(2/3)/2, t = 2/se = √24 = 4.898979, df = 3; two-sided p from
  // the t distribution with 3 degrees of freedom in closed form, 1 − (2/π)(atan(x) + x/(1 + x²)) with x = t/√3:
  // 0.016279.
  const WelchResult p = paired_t_test({1, 2, 3, 4}, {2, 4, 5, 7});
  EXPECT_NEAR(p.diff, 2.0, 1e-12);
  ASSERT_TRUE(p.t && p.df && p.p);
  EXPECT_NEAR(*p.t, std::sqrt(24.0), 1e-9);
  EXPECT_EQ(*p.df, 3.0);
  const double x = std::sqrt(24.0) / std::sqrt(3.0);
  EXPECT_NEAR(*p.p, 1 - 2 / M_PI * (std::atan(x) + x / (1 + x * x)), 1e-9);
  // Welch on the same numbers ignores the pairing and is far weaker.
  EXPECT_GT(*welch_t_test({1, 2, 3, 4}, {2, 4, 5, 7}).p, 0.1);
  // One pair, or the same difference in every pair: no p.
  EXPECT_FALSE(paired_t_test({1}, {2}).p);
  EXPECT_FALSE(paired_t_test({1, 2}, {2, 3}).p);
}

TEST(Compare, AlignmentInterpolatesAndCountsCoverage) {
  const Curve a{{0, 10, 20}, {1, 2, 3}}, b{{0, 20, 30}, {3, 5, 7}};
  const AlignedCurve m = align_curves({a, b});
  ASSERT_EQ(m.x, (std::vector<double>{0, 10, 20, 30}));
  EXPECT_DOUBLE_EQ(m.mean[1], (2 + 4) / 2.0);  // b interpolated at 10: 3 + (5-3)/2
  EXPECT_DOUBLE_EQ(m.min[1], 2);
  EXPECT_DOUBLE_EQ(m.max[1], 4);
  EXPECT_EQ(m.n, (std::vector<int>{2, 2, 2, 1}));  // a ends at 20
  EXPECT_DOUBLE_EQ(m.mean[3], 7);
  EXPECT_TRUE(std::isnan(m.std[3]));
  EXPECT_FALSE(interpolate(a, 25));
  // The grid starts where the last curve starts, so the mean does not jump as runs join.
  const Curve late{{5, 30}, {0, 0}};
  EXPECT_EQ(align_curves({a, late}).x, (std::vector<double>{5, 10, 20, 30}));
}

TEST(Compare, EmaIsDebiasedLikeTensorBoard) {
  const Curve c{{1, 2, 3}, {4, 2, 1}};
  EXPECT_EQ(ema_smooth(c, 0).y, c.y);
  const Curve s = ema_smooth(c, 0.5);
  EXPECT_DOUBLE_EQ(s.y[0], 4);                            // first value unchanged
  EXPECT_DOUBLE_EQ(s.y[1], (0.25 * 4 + 0.5 * 2) / 0.75);  // e = 0.5·2 + 0.5·(0.5·4) = 2; / (1 - 0.25)
  EXPECT_DOUBLE_EQ(s.y[2], (0.125 * 4 + 0.25 * 2 + 0.5 * 1) / 0.875);
}

TEST(Compare, GroupsByConfigDifferenceIgnoringSeedOutDirAndName) {
  const std::string root = test_dir("compare-group");
  std::vector<RunData> runs;
  std::vector<std::string> warnings;
  for (const auto& dir : three_variants(root)) runs.push_back(*load_run(dir, warnings));
  EXPECT_TRUE(warnings.empty());
  const auto variants = group_variants(runs);
  ASSERT_EQ(variants.size(), 3u);
  EXPECT_EQ(variants[0].name, "normalizer=softmax, s_init=0.43");
  EXPECT_EQ(variants[1].name, "normalizer=ssmax, s_init=0.43");
  EXPECT_EQ(variants[2].name, "normalizer=ssmax, s_init=0.2");
  for (const auto& v : variants) EXPECT_EQ(v.runs.size(), 3u);
  EXPECT_EQ(variants[0].runs, (std::vector<size_t>{0, 3, 6}));
  // Two variants differing only in the normalizer; one variant is named by the config name.
  const auto two = group_variants({runs[0], runs[1], runs[3], runs[4]});
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[1].name, "normalizer=ssmax");
  const auto one = group_variants({runs[0], runs[3]});
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].name, "softmax");  // seeds named softmax-1, softmax-2
}

TEST(Compare, ReportNumbersAndFiles) {
  const std::string root = test_dir("compare-report");
  CompareOptions o;
  o.run_dirs = three_variants(root);
  o.out_dir = root + "/report";
  const CompareReport r = compare_runs(o);
  const json& v = r.summary["variants"];
  ASSERT_EQ(v.size(), 3u);
  EXPECT_NEAR(v[0]["final"]["mean"].get<double>(), 3.2, 1e-9);
  EXPECT_NEAR(v[0]["final"]["std"].get<double>(), 0.2, 1e-9);
  EXPECT_NEAR(v[1]["final"]["mean"].get<double>(), 2.9, 1e-9);
  EXPECT_NEAR(v[1]["final"]["std"].get<double>(), 0.1, 1e-9);
  EXPECT_NEAR(v[0]["best"]["mean"].get<double>(), 3.2, 1e-9);  // losses only fall
  EXPECT_EQ(v[0]["seeds"], json({1, 2, 3}));
  EXPECT_FALSE(v[0]["in_progress"].get<bool>());
  EXPECT_NEAR(v[0]["tokens_per_s"]["mean"].get<double>(), 2000, 1e-9);
  // Common steps 25/50/75/100; at step 50 each loss is final + 1.
  ASSERT_EQ(v[0]["at_steps"].size(), 4u);
  EXPECT_EQ(v[0]["at_steps"][1]["step"].get<double>(), 50);
  EXPECT_NEAR(v[0]["at_steps"][1]["mean"].get<double>(), 4.2, 1e-9);
  // softmax vs ssmax: the hand-computed Welch test of Stats.WelchTTestByHand.
  const json& c = r.summary["comparisons"];
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0]["a"], "normalizer=softmax, s_init=0.43");
  EXPECT_NEAR(c[0]["diff"].get<double>(), -0.3, 1e-9);
  EXPECT_NEAR(c[0]["p"].get<double>(), 0.104479, 1e-3);
  EXPECT_NE(r.text.find("3.2000 ± 0.2000"), std::string::npos) << r.text;
  EXPECT_NE(r.text.find("0.1045"), std::string::npos) << r.text;

  expect_png(o.out_dir + "/loss.png", 1000, 34 + 20 + 520);
  expect_svg(o.out_dir + "/loss.svg");
  expect_png(o.out_dir + "/s.png", 1000, 34 + 20 + 2 * 400);  // the two ssmax variants
  expect_svg(o.out_dir + "/s.svg");
  EXPECT_FALSE(fs::exists(o.out_dir + "/b.png"));
  const std::string csv = read_file(o.out_dir + "/curves.csv");
  EXPECT_EQ(csv.rfind("x,variant,mean,std,min,max,n\n", 0), 0u);
  EXPECT_NE(csv.find("100,\"normalizer=softmax, s_init=0.43\",3.2,0.2,3,3.4,3\n"), std::string::npos) << csv;
  EXPECT_EQ(json::parse(read_file(o.out_dir + "/summary.json")), r.summary);
}

TEST(Compare, InProgressCutOffAndMissingMetricAreTolerated) {
  const std::string root = test_dir("compare-tolerant");
  CompareOptions o;
  o.run_dirs = {write_run(root, "a1", variant("softmax", 1), falling_to(3.0)),
                write_run(root, "a2", variant("softmax", 2), falling_to(3.1), false, 60),
                write_run(root, "b1", variant("ssmax", 1), falling_to(2.9)), root + "/not-a-run"};
  fs::create_directories(root + "/not-a-run");  // a glob like runs/* also names directories that are not runs
  std::ofstream(root + "/a2/metrics.jsonl", std::ios::app) << "{\"step\": 65, \"tok";  // killed mid-write
  // b2 has train records only (never evaluated): no val_loss.
  const std::string b2 = write_run(root, "b2", variant("ssmax", 2), falling_to(2.9), false, 20);
  o.run_dirs.push_back(b2);
  fs::create_directories(root + "/empty");
  std::ofstream(root + "/empty/config.json") << config_to_json(variant("ssmax", 3)).dump();
  std::ofstream(root + "/empty/metrics.jsonl");
  o.run_dirs.push_back(root + "/empty");
  o.out_dir = root + "/report";
  o.smooth = 0.6;
  o.x_axis = "tokens";
  o.log_x = true;
  const CompareReport r = compare_runs(o);
  EXPECT_TRUE(any_contains(r.warnings, "not-a-run: not a run directory (no config.json)"));
  EXPECT_TRUE(any_contains(r.warnings, "a2/metrics.jsonl: last line is cut off"));
  EXPECT_TRUE(any_contains(r.warnings, "empty/metrics.jsonl: no records yet"));
  EXPECT_TRUE(any_contains(r.warnings, "no val_loss records in " + b2));
  const json& v = r.summary["variants"];
  ASSERT_EQ(v.size(), 2u);
  EXPECT_TRUE(v[0]["in_progress"].get<bool>());
  EXPECT_EQ(v[0]["runs"][1]["last_step"], 60);
  EXPECT_NEAR(v[0]["final"]["mean"].get<double>(), (3.0 + (3.1 + 1.0)) / 2, 1e-9);  // a2's latest: its step-50 eval
  EXPECT_EQ(v[1]["final"]["n"], 1);
  EXPECT_TRUE(r.summary["comparisons"][0]["p"].is_null());
  EXPECT_NE(r.text.find("(in progress)"), std::string::npos);
  expect_png(o.out_dir + "/loss.png", 1000, 34 + 20 + 520);
  expect_png(o.out_dir + "/s.png", 1000, 34 + 20 + 400);
}

TEST(Compare, BadInputIsRefused) {
  const std::string root = test_dir("compare-refuse");
  Config other = variant("ssmax", 2);
  other.data.sources = {"data/other.txt"};
  other.data.dataset_dir = "elsewhere";  // the cache location is not the dataset
  CompareOptions o;
  o.run_dirs = {write_run(root, "a", variant("softmax", 1), falling_to(3.0)),
                write_run(root, "b", other, falling_to(2.9))};
  o.out_dir = root + "/report";
  try {
    compare_runs(o);
    FAIL() << "different data.sources accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("data.sources"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--force"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(o.out_dir));
  o.force = true;
  const CompareReport r = compare_runs(o);
  EXPECT_TRUE(any_contains(r.warnings, "data.sources"));
  EXPECT_FALSE(any_contains(r.warnings, "dataset_dir"));

  o.out_dir = root + "/a/config.json";  // an existing file
  EXPECT_THROW(compare_runs(o), UsageError);
  o.out_dir = root + "/report";
  o.run_dirs = {root};  // not a run: skipped, and then no run is left
  EXPECT_THROW(compare_runs(o), UsageError);
  o.run_dirs = {root + "/a", root + "/missing"};  // a typo is refused, not left out of the report
  try {
    compare_runs(o);
    FAIL() << "a run directory that does not exist was accepted";
  } catch (const UsageError& e) {
    EXPECT_EQ(std::string(e.what()), "compare: " + root + "/missing: no such run directory");
  }
}

TEST(Plot, NiceTicksAndLabels) {
  EXPECT_EQ(nice_ticks(0, 150), (std::vector<double>{0, 50, 100, 150}));
  EXPECT_EQ(nice_ticks(2.83, 5.1), (std::vector<double>{2.5, 3, 3.5, 4, 4.5, 5, 5.5}));
  EXPECT_EQ(log_ticks(10, 1000), (std::vector<double>{10, 20, 50, 100, 200, 500, 1000}));
  EXPECT_EQ(log_ticks(1, 1e6), (std::vector<double>{1, 10, 100, 1000, 1e4, 1e5, 1e6}));
  EXPECT_EQ(tick_label(0.5, 0.1), "0.5");
  EXPECT_EQ(tick_label(3, 0.5), "3.0");
  EXPECT_EQ(tick_label(150, 50), "150");
  EXPECT_EQ(tick_label(20000, 5000), "20k");
  EXPECT_EQ(tick_label(2.5e6, 5e5), "2.5M");
}

TEST(Plot, WritesPngAndSvgOfTheRequestedSize) {
  const std::string dir = test_dir("plot");
  Figure f;
  f.width = 640;
  f.panel_height = 300;
  PlotPanel p{"", "step", "loss", false, {}, {{50, "an event", 1}}};
  p.series.push_back({"one", {0, 50, 100}, {3, 2, 1.5}, {2.8, 1.9, 1.4}, {3.2, 2.1, 1.6}, {false, false, true}, 0});
  p.series.push_back({"single point", {20}, {2.5}, {}, {}, {}, 1});
  f.panels.push_back(p);
  const auto files = write_figure(f, dir + "/fig");
  ASSERT_EQ(files.size(), 2u);
  expect_png(dir + "/fig.png", 640, 300);
  expect_svg(dir + "/fig.svg");
}

TEST(Heatmap, WritesPngAndSvgSizedToTheGrid) {
  const std::string dir = test_dir("heatmap");
  Heatmap h;
  h.title = "attention mass";
  h.rows = {"0", "1", "2"};
  h.columns = {"h0", "h1", "h2", "h3"};
  h.values = {{0.1, 0.2, 0.3, 0.4}, {0.5, NAN, 0.7, 0.8}, {0.9, 1.0}};  // a missing value and a short row
  const auto files = write_heatmap(h, dir + "/heat");
  ASSERT_EQ(files.size(), 2u);
  // Cells of 90 × 60 (the widest and tallest allowed), 110 on the left and 120 for the colour bar on the
  // right, 60 above for the title and 70 below for the column labels.
  expect_png(dir + "/heat.png", 110 + 4 * 90 + 120, 60 + 3 * 60 + 70);
  expect_svg(dir + "/heat.svg");
}

TEST(Drawing, FailureNamesTheFile) {
  const std::string dir = test_dir("drawing-failure") + "/missing";
  Figure f;
  f.panels.push_back({"", "x", "y", false, {{"line", {0, 1}, {1, 2}, {}, {}, {}, 0}}, {}});
  try {
    write_figure(f, dir + "/fig");
    FAIL() << "wrote into a missing directory";
  } catch (const RuntimeFailure& e) {
    EXPECT_NE(std::string(e.what()).find(dir + "/fig.png: cannot create"), std::string::npos) << e.what();
  }
  Heatmap h;
  h.rows = h.columns = {"a"};
  h.values = {{0.5}};
  try {
    write_heatmap(h, dir + "/heat");
    FAIL() << "wrote into a missing directory";
  } catch (const RuntimeFailure& e) {
    EXPECT_NE(std::string(e.what()).find(dir + "/heat.png: cannot create"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ssmax
