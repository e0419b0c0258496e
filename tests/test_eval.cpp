// Evaluation: KV-cache decoding, length evaluation, SSMax swap-in, needle prompts and attention capture; and the
// needle/repeat finetune, which starts from the same tiny trained runs.
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>

#include "data/needle_prompt.h"
#include "eval/attention_probe.h"
#include "eval/eval_commands.h"
#include "eval/eval_model.h"
#include "eval/generate.h"
#include "eval/length_eval.h"
#include "test_util.h"
#include "train/finetune.h"
#include "train/finetune_batches.h"
#include "train/trainer.h"
#include "util/errors.h"
#include "util/files.h"

namespace ssmax {
namespace {

// Tiny trained runs, built once per process: {position, normalizer} → run directory. The directory is
// named after the test that first needs it, because ctest runs each test in its own process, in parallel.
std::string tiny_run(const std::string& position, const std::string& normalizer) {
  static std::map<std::string, std::string> runs;
  const std::string name = position + "-" + normalizer;
  if (runs.count(name)) return runs[name];
  const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string dir = test_dir("eval-" + std::string(test->test_suite_name()) + "." + test->name() + "-" + name);
  Config config = tiny_training_config(dir, normalizer);
  config.model.position = position;
  config.train.max_steps = 80;  // enough to leave the uniform distribution behind
  config.out_dir = dir + "/run";
  torch::AutoGradMode grad(true);  // a caller may hold a NoGradGuard
  train(config);
  return runs[name] = config.out_dir;
}

EvalModel load_cpu(const std::string& run, EvalLoadOptions options = {}) {
  options.device = "cpu";
  return load_eval_model(run, options);
}

std::vector<int64_t> val_prompt(const EvalModel& m, size_t n) {
  auto source = TokenSource::from_shards(eval_dataset(m).val_shards);
  auto ids = source.slice(0, n);
  return std::vector<int64_t>(ids.begin(), ids.end());
}

TEST(Generate, CachedAndUncachedGreedyDecodingAgree) {
  for (const auto& [position, normalizer] : std::vector<std::pair<std::string, std::string>>{
           {"rope", "ssmax_bias"}, {"learned", "softmax"}, {"rope", "softmax"}}) {
    SCOPED_TRACE(position + "/" + normalizer);
    EvalModel m = load_cpu(tiny_run(position, normalizer));
    SamplingOptions options;
    options.temperature = 0;
    options.max_new_tokens = 20;  // prompt 8 + 20 stays within block_size 32
    const auto prompt = val_prompt(m, 8);
    options.use_cache = true;
    const auto cached = generate_tokens(m.model, prompt, options, m.device);
    options.use_cache = false;
    const auto uncached = generate_tokens(m.model, prompt, options, m.device);
    EXPECT_EQ(cached.tokens.size(), 20u);
    EXPECT_EQ(cached.tokens, uncached.tokens);
  }
}

TEST(Generate, CachedLogitsMatchFullForward) {
  EvalModel m = load_cpu(tiny_run("rope", "ssmax_bias"));
  torch::NoGradGuard no_grad;
  const auto ids = val_prompt(m, 24);
  auto x = torch::tensor(ids, torch::kLong).view({1, -1});
  auto full = m.model->forward(x);
  std::vector<KVCache> caches;
  auto first = m.model->forward(x.narrow(1, 0, 16), &caches);
  std::vector<torch::Tensor> rows{first};
  for (int64_t t = 16; t < 24; ++t) rows.push_back(m.model->forward(x.narrow(1, t, 1), &caches));
  EXPECT_TRUE(torch::allclose(torch::cat(rows, 1), full, 1e-5, 1e-5));
}

// Without position encoding (NoPE) and with RoPE on every other layer only (Llama 4's interleaving): decoding with
// the KV cache computes what the full pass does, past the training length too.
TEST(Generate, CachedLogitsMatchFullForwardWithoutPositionEncoding) {
  for (const auto& [position, nope_every] : std::vector<std::pair<std::string, int>>{{"none", 0}, {"rope", 2}}) {
    SCOPED_TRACE(position + " " + std::to_string(nope_every));
    ModelConfig m;
    m.n_layer = 2, m.n_head = 2, m.n_embd = 16, m.block_size = 8;
    m.position = position, m.nope_every = nope_every;
    m.attention.normalizer = Normalizer::SSMaxBias;
    torch::manual_seed(3);
    GPT model(GPTOptions{m, 29});
    model->eval();
    torch::NoGradGuard no_grad;
    auto x = torch::randint(29, {2, 20}, torch::kLong);
    auto full = model->forward(x);
    std::vector<KVCache> caches;
    std::vector<torch::Tensor> rows{model->forward(x.narrow(1, 0, 5), &caches)};
    for (int64_t t = 5; t < 20; ++t) rows.push_back(model->forward(x.narrow(1, t, 1), &caches));
    EXPECT_TRUE(torch::allclose(torch::cat(rows, 1), full, 1e-5, 1e-5));
  }
}

TEST(Generate, LearnedPositionsStopAtBlockSize) {
  EvalModel m = load_cpu(tiny_run("learned", "softmax"));
  SamplingOptions options;
  options.max_new_tokens = 100;
  const auto result = generate_tokens(m.model, val_prompt(m, 30), options, m.device);
  EXPECT_TRUE(result.stopped_at_block_size);
  EXPECT_EQ(result.tokens.size(), 3u);  // positions 30, 31 fed; the token after the last one is sampled
  EXPECT_THROW(generate_tokens(m.model, val_prompt(m, 33), options, m.device), UsageError);
}

TEST(Generate, SamplingIsSeededAndTopOneIsGreedy) {
  EvalModel m = load_cpu(tiny_run("rope", "softmax"));
  SamplingOptions options;
  options.temperature = 1.0;
  options.max_new_tokens = 12;
  const auto prompt = val_prompt(m, 4);
  options.seed = 7;
  const auto a = generate_tokens(m.model, prompt, options, m.device);
  const auto b = generate_tokens(m.model, prompt, options, m.device);
  EXPECT_EQ(a.tokens, b.tokens);
  options.top_k = 1;
  const auto top1 = generate_tokens(m.model, prompt, options, m.device);
  options.temperature = 0;
  const auto greedy = generate_tokens(m.model, prompt, options, m.device);
  EXPECT_EQ(top1.tokens, greedy.tokens);
}

TokenSource val_source(const EvalModel& m) { return TokenSource::from_shards(eval_dataset(m).val_shards); }

TEST(EvalLength, BinsAverageToOverallLoss) {
  EvalModel m = load_cpu(tiny_run("rope", "softmax"));
  const auto losses = position_losses(m.model, val_source(m), 48, 5, m.device);  // beyond block_size 32
  const auto bins = log_bins(losses);
  ASSERT_EQ(bins.size(), 6u);  // [1,2) [2,4) [4,8) [8,16) [16,32) [32,49)
  EXPECT_EQ(bins.front().lo, 1);
  EXPECT_EQ(bins.back().lo, 32);
  EXPECT_EQ(bins.back().hi, 49);
  double weighted = 0;
  int64_t tokens = 0;
  for (const auto& bin : bins) weighted += bin.loss * bin.tokens, tokens += bin.tokens;
  EXPECT_EQ(tokens, 5 * 48);
  EXPECT_NEAR(weighted / tokens, losses.overall(), 1e-9);
}

TEST(EvalLength, OneWindowEqualsTheModelLoss) {
  EvalModel m = load_cpu(tiny_run("learned", "softmax"));
  const auto ids = val_source(m).slice(100, 33);
  const auto losses = position_losses(m.model, TokenSource::from_ids(ids, "window"), 32, 32, m.device);
  EXPECT_EQ(losses.windows, 1);  // only one window fits: the cap gives way
  auto x = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kLong).view({1, -1});
  torch::NoGradGuard no_grad;
  const double expected = m.model->loss(x.narrow(1, 0, 32), x.narrow(1, 1, 32)).item<double>();
  EXPECT_NEAR(losses.overall(), expected, 1e-5);
  EXPECT_THROW(position_losses(m.model, TokenSource::from_ids(ids, "window"), 33, 1, m.device), RuntimeFailure);
}

TEST(EvalLength, RopeThetaOverrideChangesOnlyRopeModels) {
  const std::string rope = tiny_run("rope", "softmax");
  auto loss_with = [&](EvalLoadOptions options) {
    EvalModel m = load_cpu(rope, options);
    return position_losses(m.model, val_source(m), 64, 4, m.device).overall();
  };
  const double base = loss_with({});
  EvalLoadOptions scaled;
  scaled.rope_theta_scale = 50;
  EvalLoadOptions same;
  same.rope_theta_scale = 1;
  EXPECT_GT(std::abs(loss_with(scaled) - base), 1e-4);
  EXPECT_EQ(loss_with(same), base);
  // Learned positions have no θ: the override is refused, as are lengths beyond block_size.
  EXPECT_THROW(load_cpu(tiny_run("learned", "softmax"), scaled), UsageError);
  LengthEvalArgs args;
  args.checkpoints = {tiny_run("learned", "softmax")};
  args.lengths = {16, 64};
  args.runtime.device = "cpu";
  EXPECT_THROW(run_length_eval(args), UsageError);
}

TEST(EvalLength, SwappedInSSMaxWithDefaultSKeepsTheLastRowAtBlockSize) {
  // One layer: the last query's row is the only thing that reaches the last logits unchanged.
  const std::string run = tiny_run("rope", "softmax");
  EvalModel softmax = load_cpu(run);
  EvalLoadOptions swap;
  swap.swap.normalizer = Normalizer::SSMax;
  EvalModel ssmax = load_cpu(run, swap);
  ASSERT_EQ(ssmax.config.model.n_layer, 1);
  auto s = ssmax.model->h[0]->as<Block>()->attn->normalizer->s;
  EXPECT_NEAR(s[0].item<double>(), 1.0 / std::log(32.0), 1e-7);
  const auto ids = val_source(softmax).slice(0, 32);
  auto x = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kLong).view({1, -1});
  torch::NoGradGuard no_grad;
  auto a = softmax.model->forward(x), b = ssmax.model->forward(x);
  EXPECT_TRUE(torch::allclose(a[0][31], b[0][31], 1e-5, 1e-5));
  EXPECT_GT((a.narrow(1, 2, 28) - b.narrow(1, 2, 28)).abs().max().item<double>(), 1e-3);  // other rows do change
  // A model trained with SSMax has nothing to swap; --s alone is refused.
  EXPECT_THROW(load_cpu(tiny_run("rope", "ssmax_bias"), swap), UsageError);
  // The rule resume follows too (normalizer_switch_allowed): ssmax → ssmax_bias adds b and keeps the learned s.
  EvalLoadOptions add_bias;
  add_bias.swap.normalizer = Normalizer::SSMaxBias;
  add_bias.swap.b = 0.25;
  const std::string ssmax_run = tiny_run("rope", "ssmax");
  EvalModel trained = load_cpu(ssmax_run), biased = load_cpu(ssmax_run, add_bias);
  auto normalizer_of = [](EvalModel& m) { return m.model->h[0]->as<Block>()->attn->normalizer; };
  EXPECT_TRUE(torch::equal(normalizer_of(trained)->s, normalizer_of(biased)->s));
  EXPECT_NEAR(normalizer_of(biased)->b[0].item<double>(), 0.25, 1e-7);
  add_bias.swap.s = 0.5;  // a trained s is not replaced
  EXPECT_THROW(load_cpu(ssmax_run, add_bias), UsageError);
  EvalLoadOptions only_s;
  only_s.swap.s = 0.5;
  EXPECT_THROW(load_cpu(run, only_s), UsageError);
}

// The scalings production models apply at inference only, on a softmax-trained model: logn leaves every row of a
// training-length window alone (c = 1 up to n = L = block_size) and scales beyond; llama4 (F = block_size) changes
// only the rows that see F keys or more. A model trained with s keeps it: no swap to a parameter-free scaling.
TEST(EvalLength, InferenceOnlyScalingsLeaveTheTrainingLengthAlone) {
  const std::string run = tiny_run("rope", "softmax");
  EvalModel softmax = load_cpu(run);
  const auto ids = val_source(softmax).slice(0, 64);
  auto x = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kLong).view({1, -1});
  torch::NoGradGuard no_grad;
  const auto plain = softmax.model->forward(x);
  for (const Normalizer kind : {Normalizer::Logn, Normalizer::Llama4}) {
    SCOPED_TRACE(normalizer_name(kind));
    EvalLoadOptions options;
    options.swap.normalizer = kind;
    EvalModel scaled = load_cpu(run, options);
    EXPECT_NE(scaled.label.find("+" + normalizer_name(kind) + "("), std::string::npos) << scaled.label;
    const auto logits = scaled.model->forward(x);
    const int64_t unchanged = kind == Normalizer::Logn ? 32 : 31;  // llama4: n = F = 32 at row 31
    EXPECT_TRUE(torch::allclose(logits.narrow(1, 0, unchanged), plain.narrow(1, 0, unchanged), 1e-6, 1e-6));
    EXPECT_GT((logits.narrow(1, 40, 24) - plain.narrow(1, 40, 24)).abs().max().item<double>(), 1e-4);
  }
  EvalLoadOptions wrong;
  wrong.swap.normalizer = Normalizer::Logn;
  EXPECT_THROW(load_cpu(tiny_run("rope", "ssmax"), wrong), UsageError);  // would drop the learned s
  wrong.swap.attn_scale = 0.2;                                           // llama4's parameter with logn
  EXPECT_THROW(load_cpu(run, wrong), UsageError);
  wrong.swap = {};
  wrong.swap.normalizer = Normalizer::Llama4;
  wrong.swap.scaled_layers = "nope";  // every layer of this model has RoPE
  EXPECT_THROW(load_cpu(run, wrong), UsageError);
}

TEST(EvalLength, CommandWritesTableJsonAndPlot) {
  LengthEvalArgs args;
  args.checkpoints = {tiny_run("rope", "softmax"), tiny_run("rope", "ssmax_bias")};
  args.lengths = {16, 64};
  args.windows = 3;
  args.out_dir = test_dir("eval-command");
  args.runtime.device = "cpu";
  args.runtime.threads = 1;
  EXPECT_EQ(run_length_eval(args), 0);
  const auto report = nlohmann::json::parse(read_file(args.out_dir + "/eval.json"));
  ASSERT_EQ(report["results"].size(), 4u);
  EXPECT_EQ(report["results"][1]["length"], 64);
  EXPECT_EQ(report["results"][1]["position_loss"].size(), 64u);
  EXPECT_EQ(report["results"][1]["bins"].size(), 7u);
  EXPECT_TRUE(std::filesystem::exists(args.out_dir + "/eval_loss.png"));
  EXPECT_TRUE(std::filesystem::exists(args.out_dir + "/eval_loss.svg"));
}

TEST(EvalLength, Bf16PrecisionTracksFloat32) {
  LengthEvalArgs args;
  args.checkpoints = {tiny_run("rope", "ssmax")};
  args.lengths = {16, 64};
  args.windows = 3;
  args.runtime = {"cpu", 1, "fp32"};
  const std::string fp32_dir = args.out_dir = test_dir("eval-fp32");
  ASSERT_EQ(run_length_eval(args), 0);
  args.runtime.precision = "bf16";
  args.out_dir = test_dir("eval-bf16");
  ASSERT_EQ(run_length_eval(args), 0);
  const auto fp32 = nlohmann::json::parse(read_file(fp32_dir + "/eval.json"));
  const auto bf16 = nlohmann::json::parse(read_file(args.out_dir + "/eval.json"));
  ASSERT_EQ(fp32["results"].size(), bf16["results"].size());
  bool any_difference = false;
  for (size_t i = 0; i < fp32["results"].size(); ++i) {
    const double a = fp32["results"][i]["loss"], b = bf16["results"][i]["loss"];
    // bf16 products round logits to ~3 significant digits: losses agree to about 1 %; a forward pass that ignored
    // the precision would agree exactly, a broken one by far less.
    EXPECT_NEAR(b, a, 0.02 * a) << i;
    any_difference |= a != b;
  }
  EXPECT_TRUE(any_difference) << "--precision bf16 gave exactly the float32 losses";
  EXPECT_FALSE(at::autocast::is_autocast_enabled(at::kCPU));  // the scope ended with the command
}

TEST(NeedlePrompt, PlacesTheNeedleAtTheRequestedDepth) {
  EvalModel m = load_cpu(tiny_run("rope", "softmax"));
  const Tokenizer tokenizer = Tokenizer::load(eval_dataset(m).tokenizer_model);
  const TokenSource haystack = val_source(m);
  std::string first_number;
  for (int64_t length : {160, 300}) {  // the tiny tokenizer spends ~100 tokens on needle + question
    for (double depth : {0.0, 0.25, 0.5, 0.75, 1.0}) {
      SCOPED_TRACE("length " + std::to_string(length) + " depth " + std::to_string(depth));
      const NeedlePrompt p = build_needle_prompt(tokenizer, haystack, length, depth, 11);
      ASSERT_EQ(p.ids.size(), static_cast<size_t>(length));
      const auto needle = tokenizer.encode(p.needle_text), question = tokenizer.encode(p.question_text);
      EXPECT_EQ(std::vector<uint32_t>(p.ids.begin() + p.needle_begin, p.ids.begin() + p.needle_end), needle);
      EXPECT_EQ(std::vector<uint32_t>(p.ids.end() - question.size(), p.ids.end()), question);
      EXPECT_EQ(p.haystack_tokens + needle.size() + question.size(), static_cast<size_t>(length));
      // At a line or sentence boundary, as near the requested depth as one line allows (lines are < 24 tokens).
      const std::string before = tokenizer.decode(std::vector<uint32_t>(p.ids.begin(), p.ids.begin() + p.needle_begin));
      EXPECT_TRUE(before.empty() || before.back() == '\n' || before.back() == ' ') << before;
      EXPECT_LE(std::abs(static_cast<double>(p.needle_begin) - depth * p.haystack_tokens), 24.0);
      if (depth == 0) EXPECT_EQ(p.needle_begin, 0u);
      if (depth == 1) EXPECT_EQ(p.needle_end, p.ids.size() - question.size());
      EXPECT_NE(tokenizer.decode(p.ids).find(p.needle_text), std::string::npos);
      if (first_number.empty()) first_number = p.number;
      EXPECT_EQ(p.number, first_number);  // one seed, one needle, at every length and depth
      EXPECT_EQ(p.number.size(), 7u);
    }
  }
  EXPECT_THROW(build_needle_prompt(tokenizer, haystack, 20, 0.5, 1), UsageError);
  EXPECT_THROW(build_needle_prompt(tokenizer, haystack, 160, 1.5, 1), UsageError);

  // The up-front check refuses exactly the lengths the prompt builder would, for every trial's needle.
  for (uint64_t seed : {1, 2, 3, 11}) {
    const NeedlePrompt p = build_needle_prompt(tokenizer, haystack, 300, 0.5, seed);
    const int64_t fixed = static_cast<int64_t>(300 - p.haystack_tokens);
    EXPECT_THROW(check_needle_length(tokenizer, "--lengths", fixed, seed, 1), UsageError);
    EXPECT_NO_THROW(check_needle_length(tokenizer, "--lengths", fixed + 1, seed, 1));
    EXPECT_EQ(build_needle_prompt(tokenizer, haystack, fixed + 1, 0.5, seed).ids.size(),
              static_cast<size_t>(fixed + 1));
  }
  const std::string message = [&] {
    try {
      check_needle_length(tokenizer, "--length", 20, 1, 3);
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  }();
  EXPECT_EQ(message.rfind("--length 20: too short for the needle (", 0), 0u) << message;
}

TEST(NeedlePrompt, ScoresAnswers) {
  EXPECT_TRUE(score_needle_answer(" 1234567.", "1234567").exact);
  EXPECT_DOUBLE_EQ(score_needle_answer(" 1234567.", "1234567").digit_accuracy, 1.0);
  EXPECT_FALSE(score_needle_answer(" 1234568", "1234567").exact);
  EXPECT_NEAR(score_needle_answer(" 1234568", "1234567").digit_accuracy, 6.0 / 7, 1e-12);
  EXPECT_FALSE(score_needle_answer("12345678", "1234567").exact);  // an extra digit is not the number
  EXPECT_DOUBLE_EQ(score_needle_answer(" the king", "1234567").digit_accuracy, 0.0);
  EXPECT_EQ(split_sentences("a. b\nc? d"), (std::vector<std::string>{"a. ", "b\n", "c? ", "d"}));
}

TEST(AttentionProbe, FileStemNamesTheDepthInPercent) {
  EXPECT_EQ(attention_file_stem(160, 0.5), "attention_L160_d50");
  EXPECT_EQ(attention_file_stem(256, 0.29), "attention_L256_d29");     // not int(28.999…) = 28
  EXPECT_EQ(attention_file_stem(256, 0.125), "attention_L256_d12.5");  // not d12, the name of depth 0.12
  EXPECT_EQ(attention_file_stem(256, 0.12), "attention_L256_d12");
  EXPECT_EQ(attention_file_stem(2048, 0), "attention_L2048_d0");
  EXPECT_EQ(attention_file_stem(2048, 1), "attention_L2048_d100");
}

TEST(AttentionProbe, LastQueryRowsSumToOneAndMatchAFullCapture) {
  for (const auto& normalizer : {"softmax", "ssmax_bias"}) {
    EvalModel m = load_cpu(tiny_run("rope", normalizer));
    const auto ids = val_source(m).slice(0, 48);  // beyond block_size: RoPE models may go there
    const auto rows = last_query_attention(m.model, ids, m.device);
    ASSERT_EQ(rows.sizes(), (std::vector<int64_t>{1, 2, 48}));
    EXPECT_TRUE(torch::allclose(rows.sum(-1), torch::ones({1, 2}, torch::kDouble), 1e-5, 1e-5));
    EXPECT_TRUE(torch::allclose(attention_mass(rows, 0, 48), torch::ones({1, 2}, torch::kDouble), 1e-5, 1e-5));
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> full;
    m.model->forward(torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kLong).view({1, -1}), nullptr,
                     &full);
    EXPECT_TRUE(torch::allclose(rows[0], full[0][0].select(1, 47).to(torch::kDouble), 1e-5, 1e-5));
    EXPECT_TRUE(torch::allclose(full[0].sum(-1), torch::ones({1, 2, 48}), 1e-5, 1e-5));  // every row, not only the last
  }
}

TEST(AttentionProbe, AttentionAndNeedleCommandsWriteReports) {
  const std::string out = test_dir("eval-needle-commands");
  AttentionArgs attention;
  attention.checkpoints = {tiny_run("rope", "ssmax_bias")};
  attention.length = 160;
  attention.trials = 2;
  attention.out_dir = out;
  attention.runtime = {"cpu", 1};
  EXPECT_EQ(run_attention(attention), 0);
  const auto report = nlohmann::json::parse(read_file(out + "/attention_L160_d50.json"));
  ASSERT_EQ(report["results"].size(), 1u);
  EXPECT_EQ(report["results"][0]["mass"].size(), 1u);
  EXPECT_EQ(report["results"][0]["heads_by_mass"].size(), 2u);
  EXPECT_TRUE(std::filesystem::exists(out + "/attention_L160_d50.png"));

  NeedleArgs needle;
  needle.checkpoints = {tiny_run("rope", "softmax"), tiny_run("learned", "softmax")};
  needle.lengths = {23};  // fits learned positions (23 + 10 new tokens <= block_size 32 + 1), not the needle
  needle.depths = {0, 1};
  needle.trials = 2;
  needle.out_dir = out;
  needle.runtime = {"cpu", 1};
  EXPECT_THROW(run_needle(needle), UsageError);  // 23 tokens cannot hold needle and question
  needle.lengths = {160};
  EXPECT_THROW(run_needle(needle), UsageError);  // learned positions: 160 > block_size
  needle.checkpoints.pop_back();
  needle.lengths = {160, 200};
  EXPECT_EQ(run_needle(needle), 0);
  const auto needles = nlohmann::json::parse(read_file(out + "/needle.json"));
  ASSERT_EQ(needles["results"].size(), 1u);
  EXPECT_EQ(needles["results"][0]["exact"].size(), 2u);     // depths
  EXPECT_EQ(needles["results"][0]["exact"][0].size(), 2u);  // lengths
  EXPECT_EQ(needles["results"][0]["cases"].size(), 8u);
}

TEST(FinetuneNeedle, AnswerAndPromptTargetsSplitTheNextTokens) {
  EvalModel m = load_cpu(tiny_run("rope", "softmax"));
  const Tokenizer tokenizer = Tokenizer::load(eval_dataset(m).tokenizer_model);
  const FinetuneBatch batch = needle_training_batch(tokenizer, val_source(m), {160}, 3, 1, 0, 0);
  const auto& x = batch.inputs;
  const auto& y = batch.answer_targets;
  ASSERT_EQ(x.size(0), 3);
  EXPECT_EQ(batch.length, 160);
  for (int64_t b = 0; b < 3; ++b) {
    auto kept = y[b].masked_select(y[b] != -100);
    std::vector<uint32_t> answer(kept.data_ptr<int64_t>(), kept.data_ptr<int64_t>() + kept.numel());
    const std::string text = tokenizer.decode(answer);
    EXPECT_EQ(text.size(), 9u) << text;  // " 1234567."
    EXPECT_TRUE(score_needle_answer(text, text.substr(1, 7)).exact);
    // The question sits right before the answer, and the inputs continue the prompt into the answer.
    std::vector<uint32_t> inputs(x[b].data_ptr<int64_t>(), x[b].data_ptr<int64_t>() + 160);
    EXPECT_NE(tokenizer.decode(inputs).find("number is:", tokenizer.decode(inputs).size() - 12), std::string::npos);
    // The prompt targets are the prompt's own next tokens (positions 0..158), disjoint from the answer's.
    const auto p = batch.prompt_targets[b];
    EXPECT_EQ((p != -100).sum().item<int64_t>(), 159);
    EXPECT_TRUE(torch::equal(p.slice(0, 0, 159), x[b].slice(0, 1, 160)));
    EXPECT_EQ(((p != -100) & (y[b] != -100)).sum().item<int64_t>(), 0);
  }
}

TEST(FinetuneNeedle, InterruptedAndResumedEqualsUnbroken) {
  const std::string dir = test_dir("eval-finetune");
  FinetuneArgs args;
  args.checkpoint = tiny_run("rope", "ssmax_bias");
  args.lengths = {150, 160};
  auto overrides = [&](const std::string& out) {
    return std::vector<std::string>{"out_dir=" + out,          "train.max_steps=6",  "train.batch_size=2",
                                    "train.log_every=2",       "train.eval_every=3", "train.eval_batches=1",
                                    "train.checkpoint_every=2"};
  };
  args.overrides = overrides(dir + "/unbroken");
  EXPECT_EQ(run_finetune(args), 0);
  args.overrides = overrides(dir + "/broken");
  args.stop_at = 3;
  EXPECT_EQ(run_finetune(args), 0);
  args.stop_at = 0;
  EXPECT_EQ(run_finetune(args), 0);  // the same command resumes
  EvalModel a = load_cpu(dir + "/unbroken"), b = load_cpu(dir + "/broken");
  EXPECT_EQ(a.meta.step, 6);
  EXPECT_EQ(b.meta.step, 6);
  auto pa = a.model->named_parameters(), pb = b.model->named_parameters();
  for (const auto& item : pa) EXPECT_TRUE(torch::equal(item.value(), pb[item.key()])) << item.key();
  // Stopped in the middle of a logging interval: the records still match an unbroken run's.
  const auto unbroken = comparable_metrics(dir + "/unbroken");
  EXPECT_EQ(unbroken.size(), 5u);  // train loss at 2, 4, 6; answer loss on the validation prompts at 3, 6
  EXPECT_EQ(unbroken, comparable_metrics(dir + "/broken"));
  // The language-model term changes the weights, and a finetune of another weight is another run.
  args.overrides = overrides(dir + "/with-lm");
  args.lm_weight = 0.5;
  EXPECT_EQ(run_finetune(args), 0);
  EvalModel c = load_cpu(dir + "/with-lm");
  EXPECT_FALSE(torch::equal(c.model->named_parameters()["wte.weight"], pa["wte.weight"]));
  args.overrides = overrides(dir + "/unbroken");
  EXPECT_THROW(run_finetune(args), UsageError);
  args.lm_weight = -1;
  EXPECT_THROW(run_finetune(args), UsageError);
  args.lm_weight = 0;
  args.overrides.push_back("model.n_layer=2");
  EXPECT_THROW(run_finetune(args), UsageError);
  // A length that cannot hold the needle and the question is refused before the run directory is made.
  args.overrides = overrides(dir + "/too-short");
  args.lengths = {20};
  EXPECT_THROW(run_finetune(args), UsageError);
  EXPECT_FALSE(std::filesystem::exists(dir + "/too-short"));
}

TEST(FinetuneRepeat, RunsIntoItsOwnDirectoryNamedAfterTheTask) {
  FinetuneArgs args;
  args.checkpoint = tiny_run("rope", "softmax");
  args.task = "repeat";
  args.lengths = {32};
  args.overrides = {"train.max_steps=30",   "train.batch_size=4", "train.eval_every=30",
                    "train.eval_batches=2", "optim.lr=3e-3",      "optim.warmup_steps=5"};
  EXPECT_EQ(run_finetune(args), 0);
  const std::string run = args.checkpoint + "-ft-repeat";  // the default out_dir names the task
  const auto task = nlohmann::json::parse(read_file(run + "/finetune.json"));
  EXPECT_EQ(task["task"], "repeat");
  const auto records = comparable_metrics(run);
  ASSERT_FALSE(records.empty());
  EXPECT_TRUE(records.back()["val_loss"].is_number());
  args.task = "needle";  // another task into the same directory is refused
  args.overrides.push_back("out_dir=" + run);
  EXPECT_THROW(run_finetune(args), UsageError);
}

}  // namespace
}  // namespace ssmax
