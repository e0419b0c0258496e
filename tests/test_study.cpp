// The study command's pieces that need no training: the study file's validation and expansion, the report's
// statistics (Holm, t intervals over seeds, the verdicts) and its rendering. The whole command runs end to end in
// tests/cli/study.sh.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "report/document.h"
#include "report/stats.h"
#include "study/study_comparisons.h"
#include "study/study_spec.h"
#include "study/study_tasks.h"
#include "test_util.h"
#include "util/errors.h"

namespace ssmax {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

std::string preset_config() { return (source_configs_dir() / "kjv-tiny-softmax.json").string(); }

// A valid study file with `edit` applied to its JSON; returns its path.
std::string write_study(const std::string& dir, const std::function<void(json&)>& edit = {}) {
  json study = {
      {"name", "unit"},
      {"config", preset_config()},
      {"out_dir", dir + "/out"},
      {"seeds", {1, 2}},
      {"variants",
       {{{"name", "softmax"}, {"set", {{"model.attention.normalizer", "softmax"}}}},
        {{"name", "ssmax"}, {"set", {{"model.attention.normalizer", "ssmax"}}}},
        {{"name", "switched"},
         {"set", {{"model.attention.normalizer", "softmax"}}},
         {"switch", {{"at_step", 100}, {"set", {{"model.attention.normalizer", "ssmax"}}}}}}}},
      {"finetune",
       {{{"task", "repeat"}, {"steps", 10}}, {{"task", "needle"}, {"steps", 10}}, {{"task", "needle"}, {"steps", 5}}}},
      {"long_context", {{"lengths", {256, 512}}, {"rope_theta_scales", {1, 50}}}},
      {"needle", {{"lengths", {256}}}}};
  if (edit) edit(study);
  const std::string path = dir + "/study.json";
  std::ofstream(path) << study.dump(2);
  return path;
}

std::string load_error(const std::string& dir, const std::function<void(json&)>& edit) {
  const std::string path = write_study(dir, edit);
  try {
    load_study(path);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "(no UsageError)";
}

TEST(Study, ExpandsSeedMajorWithOneDirectoryPerRunAndStage) {
  const std::string dir = test_dir("study_expand");
  const StudySpec spec = load_study(write_study(dir), {"threads=1"});
  EXPECT_EQ(spec.baseline, "softmax");  // the first variant when none is named
  EXPECT_DOUBLE_EQ(spec.alpha, 0.05);
  ASSERT_TRUE(spec.variants[2].normalizer_switch.has_value());
  EXPECT_EQ(spec.variants[2].normalizer_switch->at_step, 100);
  const auto runs = expand_runs(spec);
  ASSERT_EQ(runs.size(), 6u);
  EXPECT_EQ(runs[0].name, "softmax-seed1");
  EXPECT_EQ(runs[2].name, "switched-seed1");
  EXPECT_EQ(runs[3].name, "softmax-seed2");  // every variant at seed 1 before any at seed 2
  EXPECT_EQ(runs[4].run_dir, dir + "/out/runs/ssmax-seed2");
  const std::vector<std::string> stages = {dir + "/out/runs/ssmax-seed2-ft-repeat",
                                           dir + "/out/runs/ssmax-seed2-ft-needle",
                                           dir + "/out/runs/ssmax-seed2-ft-needle2"};
  EXPECT_EQ(runs[4].finetune_dirs, stages);
  EXPECT_EQ(runs[4].probe_dir(), stages.back());
  // The command line's --set comes after the file's, the run's own keys last.
  const auto& o = runs[4].overrides;
  EXPECT_NE(std::find(o.begin(), o.end(), "threads=1"), o.end());
  EXPECT_NE(std::find(o.begin(), o.end(), "seed=2"), o.end());
  EXPECT_NE(std::find(o.begin(), o.end(), "model.attention.normalizer=ssmax"), o.end());
}

TEST(Study, DefaultsToTheThreeNormalizers) {
  const std::string dir = test_dir("study_defaults");
  const StudySpec spec = load_study(write_study(dir, [](json& s) {
    s.erase("variants");
    s.erase("finetune");
  }));
  ASSERT_EQ(spec.variants.size(), 3u);
  EXPECT_EQ(spec.variants[1].name, "ssmax");
  EXPECT_EQ(spec.variants[2].overrides, std::vector<std::string>{"model.attention.normalizer=ssmax_bias"});
}

TEST(Study, RefusesBadFilesNamingTheKey) {
  const std::string dir = test_dir("study_errors");
  struct Case {
    std::function<void(json&)> edit;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {[](json& s) { s["seed"] = 1; }, "seed is not a study key here (allowed: alpha, attention,"},
      {[](json& s) {
         s["seeds"] = {1, 1};
       },
       "seeds holds a seed twice"},
      {[](json& s) { s["seeds"] = json::array(); }, "seeds must be a non-empty list of integers"},
      {[](json& s) { s["baseline"] = "ssmx"; },
       "baseline 'ssmx' is not a variant (variants: softmax, ssmax, switched)"},
      {[](json& s) { s["variants"][0]["name"] = "soft max"; }, "variants[0].name 'soft max': use letters"},
      {[](json& s) { s["variants"][1]["name"] = "softmax"; }, "name 'softmax' appears twice"},
      {[](json& s) {
         s["variants"][0]["set"] = {{"model.n_layr", 2}};
       },
       "model.n_layr"},
      {[](json& s) {
         s["variants"][0]["set"] = {{"model.n_layr", 2}};
       },
       "study.json: variant 'softmax': "},
      {[](json& s) { s["variants"][2]["switch"]["at_step"] = 151; }, "switch.at_step = 151 must be below"},
      {[](json& s) { s["variants"][2]["switch"].erase("set"); }, "variants[2].switch.set is missing or empty"},
      {[](json& s) { s["finetune"][0]["task"] = "copy"; }, "finetune[0].task 'copy': allowed are repeat and needle"},
      {[](json& s) { s["finetune"][1].erase("steps"); }, "finetune[1].steps is missing"},
      {[](json& s) {
         s["long_context"]["lengths"] = {256, -1};
       },
       "long_context.lengths must hold integers in [2,"},
      {[](json& s) {
         s["long_context"]["models"] = "finetuned";
         s.erase("finetune");
       },
       "long_context.models is 'finetuned' but the study has no finetune stages"},
      {[](json& s) {
         s["needle"]["depths"] = {0, 1.5};
       },
       "needle.depths must hold numbers in [0, 1], got 1.5"},
      {[](json& s) { s["alpha"] = 0.9; }, "alpha must be a number in [1e-06, 0.5]"},
      {[](json& s) {
         s["set"] = {{"init_from", "hf-model"}};
       },
       "init_from = 'hf-model': a study does not start runs from a Hugging Face checkpoint"},
      // Counts are checked at the JSON number's width, before narrowing to int: 2^32 trials is not 0 trials, and
      // 2^32 + 1 windows is not 1 window (which would run).
      {[](json& s) { s["needle"]["trials"] = uint64_t{1} << 32; },
       "needle.trials must be an integer in [1, 1000000], got 4294967296"},
      {[](json& s) { s["long_context"]["windows"] = (uint64_t{1} << 32) + 1; },
       "long_context.windows must be an integer in [1, 1000000], got 4294967297"},
      {[](json& s) { s["needle"]["trials"] = uint64_t{18446744073709551615u}; }, "got 18446744073709551615"},
      // What a task would refuse only once it starts (after hours of pretraining) is refused before the first.
      {[](json& s) { s["needle"]["max_new_tokens"] = 5; }, "needle.max_new_tokens must be an integer in [8, 4096]"},
      {[](json& s) { s["finetune"][0]["steps"] = 2000000000; },
       "finetune[0].steps must be an integer in [1, 1000000000]"},
      {[](json& s) { s.erase("config"); }, "config is missing"},
      {[](json& s) {
         s["set"] = {{"out_dir", "x"}};
       },
       "set out_dir=x: the study sets out_dir for each run"},
      {[](json& s) {
         s["set"] = {{"seed", 3}};
       },
       "set seed=3: the study sets seed for each run (use \"seeds\""},
      {[](json& s) {
         s["scalings"] = {{{"name", "logn"}, {"normalizer", "logn"}, {"variants", {"x"}}}};
       },
       "scalings[0].variants 'x' is not a variant"},
      {[](json& s) {
         s["scalings"] = {{{"name", "q"}, {"normalizer", "qwen"}}};
       },
       "scalings[0].normalizer 'qwen': allowed are softmax, ssmax"},
      {[](json& s) {
         s.erase("long_context");
         s["scalings"] = {{{"name", "logn"}, {"normalizer", "logn"}}};
       },
       "scalings apply to the long-context loss and recall evaluations, but the study has neither"},
      {[](json& s) {
         s["scalings"] = {{{"name", "t"}, {"normalizer", "logn"}, {"attn_scale", 0.2}}};
       },
       "--attn-scale applies only together with --normalizer llama4"},
      {[](json& s) {
         s["recall"] = {{"sequences", 0}};
       },
       "recall.sequences must be an integer in [1, 1000000]"},
  };
  for (const auto& c : cases) {
    const std::string message = load_error(dir, c.edit);
    EXPECT_NE(message.find(c.expected), std::string::npos) << "expected '" << c.expected << "' in: " << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
  // A duplicate key in the study file is refused like one in a config.
  std::ofstream(dir + "/dup.json") << R"({"config": "x.json", "seeds": [1], "seeds": [2]})";
  EXPECT_NE(error_of([&] { load_study(dir + "/dup.json"); }).find("key 'seeds' appears twice"), std::string::npos);
  EXPECT_NE(error_of([&] { load_study(dir); }).find("is a directory"), std::string::npos);
  EXPECT_NE(error_of([&] { load_study(dir + "/none.json"); }).find("no such study file"), std::string::npos);
}

// The long-context loss and recall run on every model as trained, and once more per scaling on the variants it names
// (the baseline by default), each in a directory of its own.
TEST(Study, ScalingsApplyToTheirVariantsOnly) {
  const std::string dir = test_dir("study-scalings");
  const StudySpec spec = load_study(write_study(dir, [](json& s) {
    s.erase("finetune");
    s.erase("needle");
    s["long_context"] = {{"lengths", {256, 512}}};
    s["recall"] = {{"lengths", {256, 512}}};
    s["scalings"] = {
        {{"name", "logn"}, {"normalizer", "logn"}},
        {{"name", "t"}, {"normalizer", "llama4"}, {"attn_scale", 0.2}, {"variants", {"ssmax", "switched"}}}};
  }));
  ASSERT_EQ(spec.scalings.size(), 2u);
  EXPECT_EQ(spec.scalings[0].variants, std::vector<std::string>{"softmax"});
  EXPECT_EQ(*spec.scalings[1].swap.attn_scale, 0.2);
  const auto runs = expand_runs(spec);
  std::vector<std::string> recall_dirs, long_context_dirs;
  for (const auto& task : plan_tasks(spec, runs)) {
    const std::string where = fs::path(task.out_dir).lexically_relative(dir).string();
    if (task.kind == StudyTask::Kind::Recall) recall_dirs.push_back(where);
    if (task.kind == StudyTask::Kind::LongContext && task.run == 0) long_context_dirs.push_back(where);
  }
  const std::vector<std::string> expected = {
      "out/evals/recall/softmax-seed1", "out/evals/recall+logn/softmax-seed1", "out/evals/recall/ssmax-seed1",
      "out/evals/recall+t/ssmax-seed1", "out/evals/recall/switched-seed1",     "out/evals/recall+t/switched-seed1",
      "out/evals/recall/softmax-seed2", "out/evals/recall+logn/softmax-seed2", "out/evals/recall/ssmax-seed2",
      "out/evals/recall+t/ssmax-seed2", "out/evals/recall/switched-seed2",     "out/evals/recall+t/switched-seed2"};
  EXPECT_EQ(recall_dirs, expected);
  EXPECT_EQ(long_context_dirs, (std::vector<std::string>{"out/evals/long_context-theta_x1/softmax-seed1",
                                                         "out/evals/long_context-theta_x1+logn/softmax-seed1"}));
}

// Every study file of the repository reads and plans, with its paths relative to the repository root as documented.
TEST(Study, EveryStudyFileInTheRepositoryLoads) {
  const fs::path root = source_configs_dir().parent_path();
  const fs::path before = fs::current_path();
  fs::current_path(root);
  size_t studies = 0;
  for (const auto& entry : fs::directory_iterator(root / "studies")) {
    if (entry.path().extension() != ".json") continue;
    const std::string path = (fs::path("studies") / entry.path().filename()).string();
    const std::string error = error_of([&] {
      const StudySpec spec = load_study(path);
      const auto runs = expand_runs(spec);
      check_task_arguments(spec, runs, plan_tasks(spec, runs));
    });
    EXPECT_EQ(error, "(no exception)") << path;
    ++studies;
  }
  fs::current_path(before);
  EXPECT_GE(studies, 5u);
}

TEST(Study, EveryTasksArgumentsAreCheckedBeforeTheFirstTaskRuns) {
  const std::string dir = test_dir("study-task-arguments");
  const StudySpec good = load_study(write_study(dir));
  const auto good_runs = expand_runs(good);
  EXPECT_NO_THROW(check_task_arguments(good, good_runs, plan_tasks(good, good_runs)));
  // The study file's own ranges pass a depth given twice; the needle command's one check of its arguments does not
  // (each depth would be evaluated, and averaged, twice), and the study meets it before anything trains.
  const StudySpec twice = load_study(write_study(dir, [](json& s) { s["needle"]["depths"] = {0.5, 0.25, 0.5}; }));
  const auto runs = expand_runs(twice);
  const std::string error = error_of([&] { check_task_arguments(twice, runs, plan_tasks(twice, runs)); });
  EXPECT_NE(error.find(dir + "/study.json: task 'needle"), std::string::npos) << error;
  EXPECT_NE(error.find("--depths: 0.5 is given twice"), std::string::npos) << error;
}

TEST(StudyStats, HolmAdjustmentByHand) {
  const double nan = std::nan("");
  // Sorted: 0.005 (×4), 0.01 (×3), 0.03 (×2), 0.04 (×1, raised to the running maximum 0.06); NaN stays out.
  const auto adjusted = holm_adjust({0.01, 0.04, 0.03, nan, 0.005});
  EXPECT_NEAR(adjusted[0], 0.03, 1e-12);
  EXPECT_NEAR(adjusted[1], 0.06, 1e-12);
  EXPECT_NEAR(adjusted[2], 0.06, 1e-12);
  EXPECT_TRUE(std::isnan(adjusted[3]));
  EXPECT_NEAR(adjusted[4], 0.02, 1e-12);
  EXPECT_DOUBLE_EQ(holm_adjust({0.6, 0.7})[1], 1.0);  // capped at 1
}

// Needle intervals take the seed as their unit: Student's t quantiles (tables: 12.706, 4.303, 2.776 at 95 %), the
// interval of three seeds' rates, clipped to [0, 1], and undefined with one seed.
TEST(StudyStats, NeedleIntervalsAreOverSeeds) {
  EXPECT_NEAR(student_t_quantile(0.95, 1), 12.7062, 1e-3);
  EXPECT_NEAR(student_t_quantile(0.95, 2), 4.3027, 1e-3);
  EXPECT_NEAR(student_t_quantile(0.95, 4), 2.7764, 1e-3);
  EXPECT_NEAR(student_t_quantile(0.95, 1e6), 1.9600, 1e-3);
  const Interval ci = t_interval({0.2, 0.4, 0.6});  // mean 0.4, s 0.2: ± 4.3027 · 0.2 / √3 = ± 0.4968
  EXPECT_NEAR(ci.lo, 0.4 - 0.4968, 1e-3);
  EXPECT_NEAR(ci.hi, 0.4 + 0.4968, 1e-3);
  const Interval rate = rate_interval_over_seeds({0.2, 0.4, 0.6});
  EXPECT_EQ(rate.lo, 0.0);
  EXPECT_NEAR(rate.hi, 0.8968, 1e-3);
  EXPECT_TRUE(std::isnan(t_interval({0.5}).lo));
  EXPECT_EQ(seed_rate_text({0.2, 0.4, 0.6}), "40 % [0–90] (3 seeds)");
  EXPECT_EQ(seed_rate_text({0.5}), "50 % (1 seed)");
  EXPECT_EQ(pooled_rate_text(12, 20), "60 % (12/20)");
}

TEST(StudyStats, VerdictsAreOnlyAsStrongAsTheCorrectedTest) {
  ComparisonFamily family(0.05);
  const size_t clear = family.add(
      {"final validation loss", " nats", "softmax", "ssmax", {4.70, 4.71, 4.69, 4.70}, {4.60, 4.61, 4.59, 4.60}});
  const size_t noise = family.add({"loss at 2048 tokens", " nats", "softmax", "ssmax", {4.7, 4.9}, {4.8, 4.75}});
  const size_t one_seed = family.add({"needle rate", "", "softmax", "ssmax", {0.2}, {0.4}});
  family.adjust();
  EXPECT_TRUE(family.significant(family.at(clear)));
  EXPECT_NE(family.verdict(family.at(clear)).find("ssmax has a lower final validation loss than softmax"),
            std::string::npos);
  EXPECT_NE(family.verdict(family.at(clear)).find("ssmax is better here"), std::string::npos);
  EXPECT_FALSE(family.significant(family.at(noise)));
  EXPECT_NE(family.verdict(family.at(noise)).find("no significant difference at α = 0.05 after correction"),
            std::string::npos);
  EXPECT_NE(family.verdict(family.at(one_seed)).find("not testable"), std::string::npos);
  // Holm: the smallest p of a family of two is doubled.
  EXPECT_NEAR(family.at(clear).p_holm, 2 * *family.at(clear).welch.p, 1e-15);
}

TEST(StudyDocument, Base64KnownVectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode(std::string("\xff\x00\x80", 3)), "/wCA");
}

TEST(StudyDocument, MarkdownAndHtmlCarryTheSameContentEscaped) {
  const std::string dir = test_dir("study_document");
  Document document;
  document.title = "T <1>";
  DocumentSection section{"S & s", {}};
  section.text("a < b").add({"cap", {"x|y", "z"}, {{"1", "<b>"}}}).figure("missing.png", "fig").code("k = 1");
  document.sections.push_back(section);
  const std::string md = render_markdown(document);
  EXPECT_NE(md.find("| x\\|y | z |"), std::string::npos) << md;
  EXPECT_NE(md.find("![fig](missing.png)"), std::string::npos);
  const std::string html = render_html(document, dir);
  EXPECT_NE(html.find("<td>&lt;b&gt;</td>"), std::string::npos) << html;
  EXPECT_NE(html.find("<h2>S &amp; s</h2>"), std::string::npos);
  EXPECT_NE(html.find("(figure missing.png is missing)"), std::string::npos);
  EXPECT_EQ(html.find("http"), std::string::npos);  // nothing to fetch: the page opens offline
}

}  // namespace
}  // namespace ssmax
