// Config schema: defaults, presets, strict validation (unknown keys, types, ranges, choices, relations),
// JSON syntax errors with file:line:column, --set overrides, the resolved JSON form and config_differences.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "test_util.h"
#include "util/errors.h"

namespace ssmax {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

fs::path configs_dir() { return source_configs_dir(); }

// A fresh directory per test, emptied when the test runs again (so runs outside ctest leave one each).
fs::path test_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return ssmax::test_dir("config-" + std::string(info->test_suite_name()) + "." + info->name());
}

std::string write_temp(const std::string& name, const std::string& text) {
  const fs::path path = test_dir() / name;
  std::ofstream(path, std::ios::binary) << text;
  return path.string();
}

// The UsageError message of fn(); fails the test if fn() succeeds or throws anything else.
template <typename Fn>
std::string usage_error_of(Fn&& fn) {
  try {
    fn();
  } catch (const UsageError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected UsageError, got another exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected UsageError, got none";
  return "";
}

std::string from_json_error(const json& j) {
  return usage_error_of([&] { config_from_json(j, "test.json"); });
}

std::string override_error(const std::string& assignment) {
  return usage_error_of([&] {
    json root = json::object();
    apply_override(root, assignment);
    config_from_json(root, "test.json");
  });
}

Config with_overrides(const std::vector<std::string>& assignments, json root = json::object()) {
  for (const auto& a : assignments) apply_override(root, a);
  return config_from_json(root, "test.json");
}

::testing::AssertionResult contains(const std::string& haystack, const std::string& needle) {
  if (haystack.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected to find \"" << needle << "\" in: \"" << haystack << "\"";
}
#define EXPECT_CONTAINS(haystack, needle) EXPECT_TRUE(contains((haystack), (needle)))

bool is_single_line(const std::string& s) { return !s.empty() && s.find('\n') == std::string::npos; }

// ---------------------------------------------------------------------------------------------------

TEST(Config, DefaultsLoadFromEmptyObjectAndFile) {
  const Config defaults;
  const json resolved = config_to_json(defaults);
  EXPECT_EQ(config_to_json(config_from_json(json::object(), "empty")), resolved);
  EXPECT_EQ(config_to_json(load_config(write_temp("empty.json", "{}\n"))), resolved);

  const Config c = config_from_json(json::object(), "empty");
  EXPECT_EQ(c.name, "run");
  EXPECT_EQ(c.model.n_layer, 4);
  EXPECT_EQ(c.model.n_head, 4);
  EXPECT_EQ(c.model.n_embd, 256);
  EXPECT_EQ(c.model.attention.normalizer, Normalizer::Softmax);
  EXPECT_DOUBLE_EQ(c.optim.lr, 1e-3);
  EXPECT_EQ(c.data.sources, std::vector<std::string>{"data/kjv.txt"});
  EXPECT_EQ(c.model.resolved_mlp_hidden(), 4 * 256);
}

TEST(Config, CommentsAreAllowedInFiles) {
  const std::string path = write_temp("comments.json", "{\n  // a comment\n  \"name\": \"x\" /* inline */\n}\n");
  EXPECT_EQ(load_config(path).name, "x");
}

TEST(Config, EveryPresetLoads) {
  const fs::path dir = configs_dir();
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().extension() == ".json") names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  ASSERT_GE(names.size(), 4u) << "presets in " << dir;
  for (const auto& name : names) {
    SCOPED_TRACE(name);
    Config c;
    EXPECT_NO_THROW(c = load_config((dir / name).string())) << name;
    // The resolved form of a preset is itself a valid config that resolves to the same thing.
    const json resolved = config_to_json(c);
    EXPECT_EQ(config_to_json(config_from_json(resolved, name)), resolved);
  }
  for (const char* expected :
       {"kjv-tiny-softmax.json", "kjv-tiny-ssmax.json", "kjv-tiny-ssmax_bias.json", "paper-162m.json"})
    EXPECT_NE(std::find(names.begin(), names.end(), expected), names.end()) << expected;
}

TEST(Config, KjvTinyPresetsDifferOnlyInNameOutDirAndNormalizer) {
  const fs::path dir = configs_dir();
  const std::vector<std::string> normalizers = {"softmax", "ssmax", "ssmax_bias"};
  std::vector<json> resolved;
  for (const auto& n : normalizers) {
    const Config c = load_config((dir / ("kjv-tiny-" + n + ".json")).string());
    EXPECT_EQ(normalizer_name(c.model.attention.normalizer), n);
    resolved.push_back(config_to_json(c));
  }
  const std::vector<std::string> expected = {"model.attention.normalizer", "name", "out_dir"};
  for (size_t i = 0; i < resolved.size(); ++i)
    for (size_t j = i + 1; j < resolved.size(); ++j)
      EXPECT_EQ(config_differences(resolved[i], resolved[j]), expected) << normalizers[i] << " vs " << normalizers[j];
  // The files themselves, too (not only after defaults are filled in).
  std::vector<json> raw;
  for (const auto& n : normalizers) raw.push_back(json::parse(std::ifstream(dir / ("kjv-tiny-" + n + ".json"))));
  EXPECT_EQ(config_differences(raw[0], raw[1]), expected);
  EXPECT_EQ(config_differences(raw[0], raw[2]), expected);
}

TEST(Config, UnknownKeyIsNamedWithClosestSuggestion) {
  std::string m = from_json_error({{"model", {{"n_layers", 2}}}});
  EXPECT_CONTAINS(m, "'model.n_layers'");
  EXPECT_CONTAINS(m, "did you mean 'model.n_layer'");

  m = from_json_error({{"train", {{"lr", 0.1}}}});
  EXPECT_CONTAINS(m, "'train.lr'");
  EXPECT_CONTAINS(m, "did you mean 'optim.lr'");

  m = from_json_error({{"attention", {{"normalizer", "ssmax"}}}});
  EXPECT_CONTAINS(m, "'attention'");
  EXPECT_CONTAINS(m, "'model.attention'");

  m = from_json_error({{"modle", {{"n_layer", 2}}}});
  EXPECT_CONTAINS(m, "'modle'");
  EXPECT_CONTAINS(m, "'model'");

  m = from_json_error({{"model", {{"attention", {{"normaliser", "ssmax"}}}}}});
  EXPECT_CONTAINS(m, "'model.attention.normaliser'");
  EXPECT_CONTAINS(m, "'model.attention.normalizer'");

  EXPECT_TRUE(is_single_line(m)) << m;
  EXPECT_EQ(m.rfind("test.json: ", 0), 0u) << "message starts with the origin: " << m;
}

TEST(Config, UnknownKeyInFileNamesTheFile) {
  const std::string path = write_temp("unknown.json", R"({"model": {"n_layers": 2}})");
  const std::string m = usage_error_of([&] { load_config(path); });
  EXPECT_CONTAINS(m, path);
  EXPECT_CONTAINS(m, "model.n_layers");
  EXPECT_CONTAINS(m, "model.n_layer'");
}

TEST(Config, SectionMustBeAnObject) {
  const std::string m = from_json_error({{"model", 5}});
  EXPECT_CONTAINS(m, "'model'");
  EXPECT_CONTAINS(m, "object");
  EXPECT_CONTAINS(from_json_error(json::array({1, 2})), "JSON object");
}

TEST(Config, WrongTypesAreRejected) {
  struct Case {
    json config;
    std::string key, expected;
  };
  const std::vector<Case> cases = {
      {{{"model", {{"n_layer", "4"}}}}, "model.n_layer", "integer"},        // string for int
      {{{"model", {{"n_layer", 4.5}}}}, "model.n_layer", "integer"},        // float for int
      {{{"model", {{"n_layer", 4.0}}}}, "model.n_layer", "integer"},        // a float, even if whole
      {{{"model", {{"bias", 1}}}}, "model.bias", "true or false"},          // int for bool
      {{{"model", {{"bias", "true"}}}}, "model.bias", "true or false"},     // string for bool
      {{{"optim", {{"lr", "3e-4"}}}}, "optim.lr", "number"},                // string for double
      {{{"optim", {{"lr", true}}}}, "optim.lr", "number"},                  // bool for double
      {{{"name", 5}}, "name", "string"},                                    // int for string
      {{{"data", {{"sources", "data/kjv.txt"}}}}, "data.sources", "list"},  // string for list
      {{{"data", {{"sources", json::array({1})}}}}, "data.sources", "list"},
      {{{"seed", -1}}, "seed", ""},  // negative for unsigned
      {{{"train", {{"max_steps", nullptr}}}}, "train.max_steps", "integer"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.config.dump());
    const std::string m = from_json_error(c.config);
    EXPECT_CONTAINS(m, "'" + c.key + "'");
    EXPECT_CONTAINS(m, c.expected);
    EXPECT_TRUE(is_single_line(m)) << m;
  }
}

TEST(Config, IntegersAcceptedForDoubles) {
  const Config c = config_from_json({{"optim", {{"lr", 1}, {"min_lr", 0}}}, {"model", {{"dropout", 0}}}}, "t");
  EXPECT_DOUBLE_EQ(c.optim.lr, 1.0);
  EXPECT_DOUBLE_EQ(c.optim.min_lr, 0.0);
}

TEST(Config, OutOfRangeValuesAreRejected) {
  struct Case {
    json config;
    std::string key;
  };
  const std::vector<Case> cases = {
      {{{"model", {{"dropout", 1.0}}}}, "model.dropout"},
      {{{"model", {{"dropout", -0.1}}}}, "model.dropout"},
      {{{"optim", {{"lr", 0}}}}, "optim.lr"},
      {{{"optim", {{"lr", -1e-3}}}}, "optim.lr"},
      {{{"train", {{"batch_size", -4}}}}, "train.batch_size"},
      {{{"train", {{"batch_size", 0}}}}, "train.batch_size"},
      {{{"model", {{"n_layer", 0}}}}, "model.n_layer"},
      {{{"data", {{"tokenizer", {{"vocab_size", 10}}}}}}, "data.tokenizer.vocab_size"},
      {{{"data", {{"val_fraction", 0}}}}, "data.val_fraction"},
      {{{"threads", -1}}, "threads"},
      {{{"model", {{"n_layer", 4000000000LL}}}}, "model.n_layer"},  // beyond int: must not wrap around
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.config.dump());
    const std::string m = from_json_error(c.config);
    EXPECT_CONTAINS(m, "'" + c.key + "'");
    EXPECT_CONTAINS(m, "out of range");
    EXPECT_TRUE(is_single_line(m)) << m;
  }
  // The allowed range is printed exactly, not rounded to 6 significant digits.
  EXPECT_CONTAINS(from_json_error({{"train", {{"batch_size", 0}}}}), "[1, 1048576]");
  EXPECT_CONTAINS(from_json_error({{"optim", {{"lr", 0}}}}), "(0, 10]");
}

TEST(Config, ChoicesAreListed) {
  std::string m = from_json_error({{"model", {{"attention", {{"normalizer", "foo"}}}}}});
  EXPECT_CONTAINS(m, "'model.attention.normalizer'");
  EXPECT_CONTAINS(m, "\"foo\"");
  EXPECT_CONTAINS(m, "softmax|ssmax|ssmax_bias");

  m = from_json_error({{"optim", {{"schedule", "exp"}}}});
  EXPECT_CONTAINS(m, "cosine|constant|linear");
  m = from_json_error({{"train", {{"precision", "fp16"}}}});
  EXPECT_CONTAINS(m, "'train.precision'");
  EXPECT_CONTAINS(m, "fp32|bf16");
  m = from_json_error({{"device", "gpu"}});
  EXPECT_CONTAINS(m, "'device'");
  EXPECT_CONTAINS(m, "cuda:N");
  for (const char* ok : {"auto", "cpu", "cuda", "cuda:0", "cuda:12"})
    EXPECT_NO_THROW(config_from_json({{"device", ok}}, "t")) << ok;
  for (const char* bad : {"cuda:", "cuda:x", "cuda:1a"})
    EXPECT_THROW(config_from_json({{"device", bad}}, "t"), UsageError) << bad;
}

TEST(Config, EmbeddingMustDivideIntoHeads) {
  const std::string m = from_json_error({{"model", {{"n_embd", 30}, {"n_head", 4}}}});
  EXPECT_CONTAINS(m, "n_embd = 30");
  EXPECT_CONTAINS(m, "n_head = 4");
  EXPECT_NO_THROW(config_from_json({{"model", {{"n_embd", 32}, {"n_head", 4}}}}, "t"));
  // RoPE needs an even head size.
  EXPECT_CONTAINS(from_json_error({{"model", {{"n_embd", 12}, {"n_head", 4}, {"position", "rope"}}}}), "rope");
  // min_lr above lr.
  EXPECT_CONTAINS(from_json_error({{"optim", {{"lr", 1e-4}, {"min_lr", 1e-3}}}}), "min_lr");
  EXPECT_CONTAINS(from_json_error({{"data", {{"sources", json::array()}}}}), "data.sources");
  EXPECT_CONTAINS(from_json_error({{"out_dir", ""}}), "out_dir");
}

TEST(Config, NoPELayersComeFromPositionAndNopeEvery) {
  auto c = config_from_json({{"model", {{"n_layer", 8}, {"position", "rope"}, {"nope_every", 4}}}}, "t");
  for (int layer = 0; layer < 8; ++layer) EXPECT_EQ(c.model.layer_has_rope(layer), layer != 3 && layer != 7) << layer;
  c = config_from_json({{"model", {{"n_layer", 3}, {"position", "none"}}}}, "t");
  for (int layer = 0; layer < 3; ++layer) EXPECT_FALSE(c.model.layer_has_rope(layer));
  c = config_from_json({{"model", {{"n_layer", 3}, {"position", "rope"}}}}, "t");
  for (int layer = 0; layer < 3; ++layer) EXPECT_TRUE(c.model.layer_has_rope(layer));
  EXPECT_CONTAINS(from_json_error({{"model", {{"nope_every", 2}}}}),
                  "model.nope_every = 2 needs model.position = \"rope\"");
  EXPECT_CONTAINS(from_json_error({{"model", {{"n_layer", 4}, {"position", "rope"}, {"nope_every", 5}}}}),
                  "model.nope_every = 5 with 4 layers leaves every layer with RoPE");
  EXPECT_CONTAINS(from_json_error({{"model", {{"position", "alibi"}}}}), "learned|rope|none");
}

TEST(Config, KeyValueHeadsMustDivideQueryHeads) {
  const std::string m = from_json_error({{"model", {{"n_embd", 32}, {"n_head", 4}, {"n_kv_head", 3}}}});
  EXPECT_CONTAINS(m, "model.n_kv_head = 3 does not divide model.n_head = 4");
  const auto c = config_from_json({{"model", {{"n_embd", 32}, {"n_head", 4}, {"n_kv_head", 2}}}}, "t");
  EXPECT_EQ(c.model.resolved_n_kv_head(), 2);
  EXPECT_EQ(config_from_json(json::object(), "t").model.resolved_n_kv_head(), 4);  // 0 = n_head
}

TEST(Config, SInitLengthModeMakesSTimesLnBlockSizeOne) {
  auto c = config_from_json({{"model", {{"block_size", 64}, {"attention", {{"s_init", 0.3}}}}}}, "t");
  EXPECT_DOUBLE_EQ(c.model.resolved_s_init(), 0.3);
  c = config_from_json({{"model", {{"block_size", 64}, {"attention", {{"s_init_mode", "length"}}}}}}, "t");
  EXPECT_DOUBLE_EQ(c.model.resolved_s_init() * std::log(64.0), 1.0);
  EXPECT_CONTAINS(from_json_error({{"model", {{"attention", {{"s_init_mode", "len"}}}}}}), "s_init_mode");
}

TEST(Config, DuplicateKeyIsRefusedNamingIt) {
  const std::string nested =
      write_temp("dup.json", "{\n  \"model\": {\"n_layer\": 2, \"n_head\": 2, \"n_layer\": 4}\n}\n");
  const std::string m = usage_error_of([&] { load_config(nested); });
  EXPECT_EQ(m.rfind(nested + ":", 0), 0u) << m;
  EXPECT_CONTAINS(m, "'model.n_layer' appears twice");
  EXPECT_TRUE(is_single_line(m)) << m;
  const std::string top = write_temp("dup-top.json", "{\"seed\": 1, \"name\": \"a\", \"seed\": 2}");
  EXPECT_CONTAINS(usage_error_of([&] { load_config(top); }), "'seed' appears twice");
  // The same key in two different objects, or in objects inside an array, is no duplicate.
  const std::string fine =
      write_temp("dup-fine.json", "{\"name\": \"x\", \"model\": {\"bias\": false}, \"optim\": {\"lr\": 0.001}, "
                                  "\"data\": {\"sources\": [\"a.txt\", \"b.txt\"]}}");
  EXPECT_NO_THROW(load_config(fine));
}

TEST(Config, InvalidJsonReportsFileLineColumn) {
  const std::string path = write_temp("bad.json", "{\n  \"name\": \"x\",\n  \"seed\": ,\n  \"threads\": 1\n}\n");
  const std::string m = usage_error_of([&] { load_config(path); });
  EXPECT_EQ(m.rfind(path + ":3:", 0), 0u) << m;
  EXPECT_CONTAINS(m, path + ":3:11:");
  EXPECT_CONTAINS(m, "invalid JSON");
  EXPECT_TRUE(is_single_line(m)) << m;

  // Cut off at the end: still a located, one-line usage error.
  const std::string cut = write_temp("cut.json", "{\n  \"name\": \"x\",\n");
  const std::string m2 = usage_error_of([&] { load_config(cut); });
  EXPECT_EQ(m2.rfind(cut + ":", 0), 0u) << m2;
  EXPECT_CONTAINS(m2, "invalid JSON");
  EXPECT_TRUE(is_single_line(m2)) << m2;

  const std::string not_object = write_temp("list.json", "[1, 2]\n");
  EXPECT_CONTAINS(usage_error_of([&] { load_config(not_object); }), not_object);
}

TEST(Config, MissingFileIsAUsageErrorNamingIt) {
  const std::string path = (test_dir() / "does-not-exist.json").string();
  EXPECT_CONTAINS(usage_error_of([&] { load_config(path); }), path);
}

TEST(Config, OverridesAreTypedByTheSchema) {
  const Config c = with_overrides({
      "model.n_layer=7",
      "optim.lr=3e-4",
      "optim.min_lr=1e-5",
      "model.bias=true",
      "model.attention.learn_s=false",
      "model.attention.normalizer=ssmax",
      "name=hello world",
      "data.sources=a.txt,b dir",
      "seed=12345678901234",
      "model.attention.s_init=-0.5",
  });
  EXPECT_EQ(c.model.n_layer, 7);
  EXPECT_DOUBLE_EQ(c.optim.lr, 3e-4);
  EXPECT_DOUBLE_EQ(c.optim.min_lr, 1e-5);
  EXPECT_TRUE(c.model.bias);
  EXPECT_FALSE(c.model.attention.learn_s);
  EXPECT_EQ(c.model.attention.normalizer, Normalizer::SSMax);
  EXPECT_EQ(c.name, "hello world");
  EXPECT_EQ(c.data.sources, (std::vector<std::string>{"a.txt", "b dir"}));
  EXPECT_EQ(c.seed, 12345678901234ull);
  EXPECT_DOUBLE_EQ(c.model.attention.s_init, -0.5);

  // Strings that look like numbers stay strings; a JSON list works for lists; a value may hold '='.
  const Config d = with_overrides({"name=42", "data.sources=[\"x.txt\",\"y.txt\"]", "out_dir=runs/a=b"});
  EXPECT_EQ(d.name, "42");
  EXPECT_EQ(d.data.sources, (std::vector<std::string>{"x.txt", "y.txt"}));
  EXPECT_EQ(d.out_dir, "runs/a=b");
  // An integer is a fine number.
  EXPECT_DOUBLE_EQ(with_overrides({"optim.lr=1"}).optim.lr, 1.0);
}

TEST(Config, OverridesReplaceFileValuesInOrder) {
  const std::string path = write_temp("base.json", R"({"name": "base", "model": {"n_layer": 2, "n_head": 2}})");
  const Config c = load_config(path, {"model.n_layer=3", "model.n_layer=5", "optim.lr=0.01"});
  EXPECT_EQ(c.name, "base");
  EXPECT_EQ(c.model.n_layer, 5);
  EXPECT_EQ(c.model.n_head, 2);  // siblings in the same section are kept
  EXPECT_DOUBLE_EQ(c.optim.lr, 0.01);
  // Overrides are validated with the file: the relation check sees the final values.
  EXPECT_NO_THROW(load_config(path, {"model.n_embd=30", "model.n_head=3"}));
  EXPECT_CONTAINS(usage_error_of([&] { load_config(path, {"model.n_embd=31"}); }), "not divisible");
}

TEST(Config, BadOverridesAreUsageErrors) {
  std::string m = override_error("model.n_layers=2");
  EXPECT_CONTAINS(m, "--set model.n_layers=2");
  EXPECT_CONTAINS(m, "'model.n_layers'");
  EXPECT_CONTAINS(m, "did you mean 'model.n_layer'");
  EXPECT_CONTAINS(override_error("train.lr=0.1"), "'optim.lr'");

  // A section is not a key: the message must not suggest the very name that was given.
  m = override_error("model=3");
  EXPECT_CONTAINS(m, "'model'");
  EXPECT_EQ(m.find("did you mean 'model'"), std::string::npos) << m;

  // No '=' or no key.
  for (const char* malformed : {"model.n_layer", "=3", ""}) {
    m = override_error(malformed);
    EXPECT_CONTAINS(m, "KEY=VALUE");
  }

  struct Case {
    std::string assignment, key;
  };
  const std::vector<Case> bad_types = {
      {"model.n_layer=two", "model.n_layer"},
      {"model.n_layer=2.5", "model.n_layer"},
      {"model.n_layer=", "model.n_layer"},
      {"model.n_layer=\"2\"", "model.n_layer"},
      {"model.bias=1", "model.bias"},
      {"model.bias=yes", "model.bias"},
      {"optim.lr=fast", "optim.lr"},
      {"optim.lr=[1]", "optim.lr"},
      {"optim.lr=0", "optim.lr"},
      {"model.dropout=1.0", "model.dropout"},
      {"train.batch_size=-1", "train.batch_size"},
      {"model.attention.normalizer=foo", "model.attention.normalizer"},
  };
  for (const auto& c : bad_types) {
    SCOPED_TRACE(c.assignment);
    m = override_error(c.assignment);
    EXPECT_EQ(m.rfind("--set " + c.assignment + ":", 0), 0u) << "names the --set: " << m;
    EXPECT_TRUE(is_single_line(m)) << m;
  }
  EXPECT_CONTAINS(override_error("model.attention.normalizer=foo"), "softmax|ssmax|ssmax_bias");
  EXPECT_CONTAINS(override_error("model.n_layer=two"), "integer");
}

}  // namespace
}  // namespace ssmax
