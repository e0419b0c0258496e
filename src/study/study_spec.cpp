#include "study/study_spec.h"

#include <filesystem>
#include <set>

#include "config/config.h"
#include "config/json_paths.h"
#include "util/errors.h"
#include "util/files.h"
#include "util/text.h"

namespace ssmax {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Reads one object of the study file; every access names the dotted key in its error.
class Section {
 public:
  Section(const json& node, std::string file, std::string where, std::set<std::string> allowed)
      : node_(node), file_(std::move(file)), where_(std::move(where)) {
    if (!node_.is_object()) fail(where_.empty() ? "the study" : where_, "must be a JSON object { ... }");
    for (const auto& [key, value] : node_.items())
      if (!allowed.count(key)) {
        std::vector<std::string> names(allowed.begin(), allowed.end());
        fail(path(key), "is not a study key here (allowed: " + join(names) + ")");
      }
  }

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw UsageError(escape_controls(file_ + ": " + key + " " + what));  // keys and values come from the file
  }
  std::string path(const std::string& key) const { return where_.empty() ? key : where_ + "." + key; }
  bool has(const std::string& key) const { return node_.contains(key); }
  const json& at(const std::string& key) const { return node_.at(key); }

  std::string text(const std::string& key, const std::string& fallback, bool required = false) const {
    if (!has(key)) {
      if (required) fail(path(key), "is missing");
      return fallback;
    }
    if (!at(key).is_string() || at(key).get<std::string>().empty()) fail(path(key), "must be a non-empty string");
    return at(key).get<std::string>();
  }
  double number(const std::string& key, double fallback, double lo, double hi) const {
    if (!has(key)) return fallback;
    if (!at(key).is_number() || at(key).get<double>() < lo || at(key).get<double>() > hi)
      fail(path(key),
           "must be a number in [" + format_number(lo) + ", " + format_number(hi) + "], got " + at(key).dump());
    return at(key).get<double>();
  }
  // Checked at the JSON number's full width before narrowing: 2^32 trials is refused as 2^32, never read as 0.
  int64_t integer(const std::string& key, int64_t fallback, int64_t lo, int64_t hi) const {
    if (!has(key)) return fallback;
    const json& value = at(key);
    const bool in_range = value.is_number_integer() &&
                          !(value.is_number_unsigned() && value.get<uint64_t>() > uint64_t(hi)) &&
                          value.get<int64_t>() >= lo && value.get<int64_t>() <= hi;
    if (!in_range)
      fail(path(key),
           "must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + value.dump());
    return value.get<int64_t>();
  }
  template <typename T>
  std::vector<T> list(const std::string& key, std::vector<T> fallback, double lo, double hi) const {
    if (!has(key)) return fallback;
    const json& value = at(key);
    const bool integral = std::is_integral_v<T>;
    if (!value.is_array() || value.empty())
      fail(path(key), "must be a non-empty list of " + std::string(integral ? "integers" : "numbers"));
    std::vector<T> out;
    for (const auto& item : value) {
      if (!(integral ? item.is_number_integer() : item.is_number()) || item.get<double>() < lo ||
          item.get<double>() > hi)
        fail(path(key), "must hold " + std::string(integral ? "integers" : "numbers") + " in [" + format_number(lo) +
                            ", " + format_number(hi) + "], got " + item.dump());
      out.push_back(item.get<T>());
    }
    return out;
  }
  std::vector<std::string> strings(const std::string& key, std::vector<std::string> fallback) const {
    if (!has(key)) return fallback;
    if (!at(key).is_array() || at(key).empty()) fail(path(key), "must be a non-empty list of strings");
    std::vector<std::string> out;
    for (const auto& item : at(key)) {
      if (!item.is_string()) fail(path(key), "must hold strings, got " + item.dump());
      out.push_back(item.get<std::string>());
    }
    return out;
  }
  const std::string& file() const { return file_; }
  // {"model.n_layer": 2, "optim.lr": 1e-3} → {"model.n_layer=2", "optim.lr=0.001"}, typed later by the schema.
  std::vector<std::string> assignments(const std::string& key) const {
    if (!has(key)) return {};
    if (!at(key).is_object()) fail(path(key), "must be an object of config keys, e.g. {\"optim.lr\": 0.001}");
    std::vector<std::string> out;
    for (const auto& [name, value] : at(key).items())
      out.push_back(name + "=" + (value.is_string() ? value.get<std::string>() : value.dump()));
    return out;
  }

 private:
  static std::string format_number(double x) {
    json j = x;
    if (x == static_cast<double>(static_cast<int64_t>(x)) && std::abs(x) < 1e15) j = static_cast<int64_t>(x);
    return j.dump();
  }
  const json& node_;
  std::string file_, where_;
};

std::vector<StudyVariant> default_variants() {
  std::vector<StudyVariant> variants;
  for (const char* name : {"softmax", "ssmax", "ssmax_bias"})
    variants.push_back({name, {std::string("model.attention.normalizer=") + name}, std::nullopt});
  return variants;
}

StudyVariant read_variant(const json& node, const std::string& file, const std::string& where) {
  Section s(node, file, where, {"name", "set", "switch"});
  StudyVariant variant;
  variant.name = s.text("name", "", true);
  for (char c : variant.name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.'))
      s.fail(s.path("name"), "'" + variant.name + "': use letters, digits, '_', '-' and '.' (it names directories)");
  variant.overrides = s.assignments("set");
  if (s.has("switch")) {
    Section sw(s.at("switch"), file, s.path("switch"), {"at_step", "set"});
    NormalizerSwitch normalizer_switch;
    normalizer_switch.at_step = sw.integer("at_step", 0, 1, 1000000000);
    if (!sw.has("at_step")) sw.fail(sw.path("at_step"), "is missing (the step at which the switch happens)");
    normalizer_switch.overrides = sw.assignments("set");
    if (normalizer_switch.overrides.empty())
      sw.fail(sw.path("set"), "is missing or empty (e.g. {\"model.attention.normalizer\": \"ssmax\"})");
    variant.normalizer_switch = normalizer_switch;
  }
  return variant;
}

// The variant's config, its switch and the finetune stages' overrides, as the run at the first seed would use them.
void check_variant(const StudySpec& spec, const StudyRun& run) {
  const std::string& path = spec.path;
  const Config config = load_config(spec.config_path, run.overrides);
  if (!config.init_from.empty())  // its model section comes from the checkpoint, which only `train` reads
    throw UsageError(path + ": init_from = '" + config.init_from +
                     "': a study does not start runs from a Hugging "
                     "Face checkpoint (only `train --init-from` imports one); leave init_from empty");
  const auto& variant = spec.variants[run.variant];
  if (variant.normalizer_switch) {
    auto overrides = run.overrides;
    overrides.insert(overrides.end(), variant.normalizer_switch->overrides.begin(),
                     variant.normalizer_switch->overrides.end());
    const Config switched = load_config(spec.config_path, overrides);
    const int64_t at = variant.normalizer_switch->at_step;
    if (at > config.train.max_steps || at >= switched.train.max_steps)
      throw UsageError(path + ": variant '" + variant.name + "': switch.at_step = " + std::to_string(at) +
                       " must be below train.max_steps (" + std::to_string(config.train.max_steps) +
                       "), or equal to it with a larger train.max_steps in switch.set");
  }
  for (const auto& stage : spec.finetune) {
    json scratch = config_to_json(config);
    for (const auto& assignment : stage.overrides) apply_override(scratch, assignment);
    config_from_json(scratch, path + ": finetune.set");
  }
}

RecallSpec read_recall(const Section& s) {
  const Section r(s.at("recall"), s.file(), "recall", {"lengths", "sequences", "seed"});
  RecallSpec recall;
  recall.lengths = r.list<int64_t>("lengths", {}, 2, 1e9);
  recall.sequences = static_cast<int>(r.integer("sequences", 256, 1, 1000000));
  recall.seed = static_cast<uint64_t>(r.integer("seed", 1, 0, int64_t{1} << 62));
  return recall;
}

std::vector<EvalScaling> read_scalings(const Section& s, const std::set<std::string>& variants,
                                       const std::string& baseline) {
  if (!s.at("scalings").is_array()) s.fail("scalings", "must be a list of {\"name\": ..., \"normalizer\": ...}");
  std::vector<EvalScaling> scalings;
  std::set<std::string> names;
  for (size_t i = 0; i < s.at("scalings").size(); ++i) {
    const Section c(
        s.at("scalings")[i], s.file(), "scalings[" + std::to_string(i) + "]",
        {"name", "variants", "normalizer", "s", "b", "logn_length", "attn_scale", "floor_scale", "scaled_layers"});
    EvalScaling scaling;
    scaling.name = c.text("name", "", true);
    if (!names.insert(scaling.name).second) c.fail(c.path("name"), "'" + scaling.name + "' appears twice");
    scaling.variants = c.strings("variants", {baseline});
    for (const auto& variant : scaling.variants)
      if (!variants.count(variant)) c.fail(c.path("variants"), "'" + variant + "' is not a variant");
    const std::string normalizer = c.text("normalizer", "", true);
    scaling.swap.normalizer = normalizer_from_name(normalizer);
    if (!scaling.swap.normalizer)
      c.fail(c.path("normalizer"), "'" + normalizer + "': allowed are " + join(normalizer_names()));
    if (c.has("s")) scaling.swap.s = c.number("s", 0, -100, 100);
    if (c.has("b")) scaling.swap.b = c.number("b", 0, -100, 100);
    if (c.has("logn_length")) scaling.swap.logn_length = c.integer("logn_length", 0, 2, 1 << 30);
    if (c.has("attn_scale")) scaling.swap.attn_scale = c.number("attn_scale", 0, 0, 100);
    if (c.has("floor_scale")) scaling.swap.floor_scale = c.integer("floor_scale", 0, 1, 1 << 30);
    if (c.has("scaled_layers")) scaling.swap.scaled_layers = c.text("scaled_layers", "");
    try {
      check_arguments(scaling.swap);
    } catch (const UsageError& e) {
      c.fail(c.path("normalizer"), std::string("'") + normalizer + "': " + e.what());
    }
    scalings.push_back(scaling);
  }
  return scalings;
}

std::vector<StudyVariant> read_variants(const Section& s) {
  if (!s.has("variants")) return default_variants();
  if (!s.at("variants").is_array() || s.at("variants").empty())
    s.fail("variants", "must be a non-empty list of {\"name\": ..., \"set\": {...}}");
  std::vector<StudyVariant> variants;
  std::set<std::string> names;
  for (size_t i = 0; i < s.at("variants").size(); ++i) {
    variants.push_back(read_variant(s.at("variants")[i], s.file(), "variants[" + std::to_string(i) + "]"));
    if (!names.insert(variants.back().name).second)
      s.fail("variants", "name '" + variants.back().name + "' appears twice");
  }
  return variants;
}

std::vector<FinetuneStage> read_finetune(const Section& s) {
  if (!s.at("finetune").is_array()) s.fail("finetune", "must be a list of stages {\"task\": ..., \"steps\": ...}");
  std::vector<FinetuneStage> stages;
  for (size_t i = 0; i < s.at("finetune").size(); ++i) {
    const Section f(s.at("finetune")[i], s.file(), "finetune[" + std::to_string(i) + "]",
                    {"task", "steps", "lengths", "lm_weight", "set"});
    FinetuneStage stage;
    stage.task = f.text("task", "", true);
    if (stage.task != "repeat" && stage.task != "needle")
      f.fail(f.path("task"), "'" + stage.task + "': allowed are repeat and needle");
    stage.steps = f.integer("steps", 0, 1, 1000000000);  // train.max_steps's range
    if (!f.has("steps")) f.fail(f.path("steps"), "is missing (the stage's training steps)");
    stage.lengths = f.list<int64_t>("lengths", {256}, 16, 1e9);
    stage.lm_weight = f.number("lm_weight", 0, 0, 1e6);
    stage.overrides = f.assignments("set");
    stages.push_back(stage);
  }
  return stages;
}

LongContextSpec read_long_context(const Section& s, bool has_finetune) {
  const Section l(s.at("long_context"), s.file(), "long_context",
                  {"lengths", "rope_theta_scales", "windows", "models"});
  LongContextSpec lc;
  if (!l.has("lengths")) l.fail(l.path("lengths"), "is missing (context lengths in tokens, e.g. [256, 512, 1024])");
  lc.lengths = l.list<int64_t>("lengths", {}, 2, 1e9);
  lc.rope_theta_scales = l.list<double>("rope_theta_scales", {1}, 1e-6, 1e9);
  lc.windows = static_cast<int>(l.integer("windows", 8, 1, 1000000));
  const std::string models = l.text("models", "pretrained");
  if (models != "pretrained" && models != "finetuned")
    l.fail(l.path("models"), "'" + models + "': allowed are pretrained and finetuned");
  if (models == "finetuned" && !has_finetune)
    l.fail(l.path("models"), "is 'finetuned' but the study has no finetune stages");
  lc.finetuned = models == "finetuned";
  return lc;
}

NeedleSpec read_needle(const Section& s) {
  const Section n(s.at("needle"), s.file(), "needle", {"lengths", "depths", "trials", "max_new_tokens", "seed"});
  NeedleSpec needle;
  if (!n.has("lengths")) n.fail(n.path("lengths"), "is missing (prompt lengths in tokens)");
  needle.lengths = n.list<int64_t>("lengths", {}, 32, 1e9);
  needle.depths = n.list<double>("depths", needle.depths, 0, 1);
  needle.trials = static_cast<int>(n.integer("trials", 5, 1, 1000000));
  needle.max_new_tokens = static_cast<int>(n.integer("max_new_tokens", 10, 8, 4096));  // a space and 7 digits
  needle.seed = static_cast<uint64_t>(n.integer("seed", 1, 0, int64_t{1} << 62));
  return needle;
}

AttentionSpec read_attention(const Section& s) {
  const Section a(s.at("attention"), s.file(), "attention", {"lengths", "depth", "trials"});
  AttentionSpec attention;
  if (!a.has("lengths")) a.fail(a.path("lengths"), "is missing (prompt lengths in tokens)");
  attention.lengths = a.list<int64_t>("lengths", {}, 32, 1e9);
  attention.depth = a.number("depth", 0.5, 0, 1);
  attention.trials = static_cast<int>(a.integer("trials", 5, 1, 1000000));
  return attention;
}

// The study's "set" (then the command line's --set): not the keys the study sets for each run itself, which would be
// silently replaced.
std::vector<std::string> read_overrides(const Section& s, const std::vector<std::string>& cli_overrides) {
  std::vector<std::string> overrides = s.assignments("set");
  overrides.insert(overrides.end(), cli_overrides.begin(), cli_overrides.end());
  for (const auto& assignment : overrides)
    for (const char* key : {"out_dir", "name", "seed"})
      if (assignment.rfind(std::string(key) + "=", 0) == 0)
        throw UsageError(s.file() + ": set " + assignment + ": the study sets " + key + " for each run (" +
                         (std::string(key) == "seed" ? "use \"seeds\"" : "use the study file's \"out_dir\"") +
                         "; runs go to <out_dir>/runs/<variant>-seed<k>)");
  return overrides;
}

}  // namespace

StudySpec load_study(const std::string& path, const std::vector<std::string>& cli_overrides) {
  StudySpec spec;
  spec.path = path;
  spec.document = parse_json_strict(read_input_file(path, "study", "presets are in studies/"), path);
  const Section s(spec.document, path, "",
                  {"name", "description", "config", "out_dir", "set", "seeds", "variants", "baseline", "finetune",
                   "long_context", "needle", "attention", "recall", "scalings", "alpha"});
  spec.name = s.text("name", fs::path(path).stem().string());
  spec.config_path = s.text("config", "", true);
  spec.out_dir = s.text("out_dir", "runs/study-" + spec.name);
  spec.overrides = read_overrides(s, cli_overrides);
  spec.seeds = s.list<uint64_t>("seeds", {1}, 0, 9.007e15);
  if (std::set<uint64_t>(spec.seeds.begin(), spec.seeds.end()).size() != spec.seeds.size())
    s.fail("seeds", "holds a seed twice");
  spec.alpha = s.number("alpha", 0.05, 1e-6, 0.5);
  spec.variants = read_variants(s);
  std::set<std::string> names;
  for (const auto& variant : spec.variants) names.insert(variant.name);
  spec.baseline = s.text("baseline", spec.variants.front().name);
  if (!names.count(spec.baseline))
    s.fail("baseline", "'" + spec.baseline + "' is not a variant (variants: " +
                           join(std::vector<std::string>(names.begin(), names.end())) + ")");
  if (s.has("finetune")) spec.finetune = read_finetune(s);
  if (s.has("long_context")) spec.long_context = read_long_context(s, !spec.finetune.empty());
  if (s.has("needle")) spec.needle = read_needle(s);
  if (s.has("attention")) spec.attention = read_attention(s);
  if (s.has("recall")) spec.recall = read_recall(s);
  if (s.has("scalings")) {
    spec.scalings = read_scalings(s, names, spec.baseline);
    if (!spec.long_context && !spec.recall)
      s.fail("scalings", "apply to the long-context loss and recall evaluations, but the study has neither");
  }

  // Every variant's config (they differ from run to run only by seed), its switch and every finetune's overrides
  // must be valid before anything trains. Errors from the config layer get the study file and variant in front.
  for (const auto& run : expand_runs(spec)) {
    if (run.seed != spec.seeds.front()) break;
    try {
      check_variant(spec, run);
    } catch (const UsageError& e) {
      const std::string what = e.what();
      if (what.rfind(path, 0) == 0) throw;
      throw UsageError(path + ": variant '" + spec.variants[run.variant].name + "': " + what);
    }
  }
  return spec;
}

std::vector<StudyRun> expand_runs(const StudySpec& spec) {
  std::vector<StudyRun> runs;
  for (uint64_t seed : spec.seeds)
    for (size_t v = 0; v < spec.variants.size(); ++v) {
      StudyRun run;
      run.variant = v;
      run.seed = seed;
      run.name = spec.variants[v].name + "-seed" + std::to_string(seed);
      run.run_dir = (fs::path(spec.out_dir) / "runs" / run.name).string();
      run.overrides = spec.overrides;
      run.overrides.insert(run.overrides.end(), spec.variants[v].overrides.begin(), spec.variants[v].overrides.end());
      run.overrides.push_back("seed=" + std::to_string(seed));
      run.overrides.push_back("out_dir=" + run.run_dir);
      run.overrides.push_back("name=" + spec.name + "/" + run.name);
      std::map<std::string, int> per_task;
      for (const auto& stage : spec.finetune) {
        const int count = ++per_task[stage.task];
        run.finetune_dirs.push_back(run.run_dir + "-ft-" + stage.task + (count > 1 ? std::to_string(count) : ""));
      }
      runs.push_back(run);
    }
  return runs;
}

}  // namespace ssmax
