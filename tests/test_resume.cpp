// Exact resume, normalizer switch on resume, and checkpoint validation.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>

#include "run/metrics.h"
#include "test_util.h"
#include "train/checkpoint.h"
#include "train/optimizer.h"
#include "train/trainer.h"
#include "util/errors.h"
#include "util/files.h"

namespace ssmax {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

std::map<std::string, torch::Tensor> weights_of(const std::string& checkpoint) {
  auto meta = read_checkpoint_meta(checkpoint);
  Config config = config_from_json(meta.config, checkpoint);
  GPT model(GPTOptions{config.model, meta.vocab_size});
  load_checkpoint(checkpoint, model, nullptr);
  std::map<std::string, torch::Tensor> weights;
  for (const auto& item : model->named_parameters()) weights[item.key()] = item.value().detach().clone();
  return weights;
}

Config resumable_config(const std::string& dir, const std::string& normalizer) {
  Config config = tiny_training_config(dir, normalizer);
  config.model.dropout = 0.1;  // exercises the RNG state in the checkpoint
  config.train.max_steps = 12;
  config.train.log_every = 2;
  config.train.eval_every = 4;
  config.train.checkpoint_every = 4;
  return config;
}

TEST(Resume, StopAndResumeIsBitIdenticalToUnbrokenRun) {
  const std::string dir = test_dir("resume-exact");
  Config config = resumable_config(dir, "ssmax_bias");
  config.out_dir = dir + "/unbroken";
  train(config);
  config.out_dir = dir + "/broken";
  TrainOptions stop;
  stop.stop_at = 5;  // mid logging interval, between checkpoints
  TrainSummary first = train(config, stop);
  EXPECT_TRUE(first.interrupted);
  EXPECT_EQ(first.steps, 5);
  TrainSummary second = resume(dir + "/broken", {});
  EXPECT_EQ(second.steps, 12);
  EXPECT_FALSE(second.interrupted);

  auto unbroken = comparable_metrics(dir + "/unbroken"), broken = comparable_metrics(dir + "/broken");
  ASSERT_EQ(unbroken.size(), broken.size());  // one record per step: nothing duplicated
  for (size_t i = 0; i < unbroken.size(); ++i) EXPECT_EQ(unbroken[i], broken[i]) << "record " << i;
  auto a = weights_of(checkpoint_path(dir + "/unbroken", 12)), b = weights_of(checkpoint_path(dir + "/broken", 12));
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, tensor] : a) EXPECT_TRUE(torch::equal(tensor, b.at(name))) << name;
}

TEST(Resume, InterruptedRunLogsAreCutBackToTheCheckpoint) {
  const std::string dir = test_dir("resume-truncate");
  Config config = resumable_config(dir, "softmax");
  config.out_dir = dir + "/run";
  TrainOptions stop;
  stop.stop_at = 8;
  train(config, stop);
  // Pretend the run went on past its last checkpoint and then died: extra lines that must not survive.
  const std::string metrics = dir + "/run/metrics.jsonl";
  { std::ofstream(metrics, std::ios::app) << "{\"step\":9,\"tokens\":1,\"train_loss\":1.0}\n{\"step\":10,\"to"; }
  fs::remove(checkpoint_path(dir + "/run", 8));  // falls back to step 4 (manifest without archive is skipped)
  resume(dir + "/run", {});
  std::vector<int64_t> steps;
  for (const auto& r : read_metrics(metrics).records)
    if (r.train_loss) steps.push_back(r.step);
  EXPECT_EQ(steps, (std::vector<int64_t>{2, 4, 6, 8, 10, 12}));
}

TEST(Resume, SoftmaxRunSwitchesToSsmax) {
  const std::string dir = test_dir("resume-switch");
  Config config = resumable_config(dir, "softmax");
  config.out_dir = dir + "/run";
  TrainOptions stop;
  stop.stop_at = 4;
  train(config, stop);
  resume(dir + "/run", {"model.attention.normalizer=ssmax", "model.attention.s_init=0.3"});
  auto records = read_metrics(dir + "/run/metrics.jsonl").records;
  auto event = std::find_if(records.begin(), records.end(), [](const auto& r) { return !r.event.empty(); });
  ASSERT_NE(event, records.end());
  EXPECT_EQ(event->step, 4);
  EXPECT_NE(event->event.find("softmax to ssmax"), std::string::npos);
  EXPECT_TRUE(records.back().parameter("s").size() == 1 && records.back().parameter("s")[0].size() == 2);
  auto weights = weights_of(checkpoint_path(dir + "/run", 12));
  ASSERT_TRUE(weights.count("h.0.attn.normalizer.s"));
  EXPECT_FALSE(torch::equal(weights["h.0.attn.normalizer.s"], torch::full({2}, 0.3f)));  // it learned
  json saved = json::parse(read_file(dir + "/run/config.json"));
  EXPECT_EQ(saved["model"]["attention"]["normalizer"], "ssmax");
}

TEST(Resume, RefusesShapeChangesAndNamesTheKeys) {
  const std::string dir = test_dir("resume-refuse");
  Config config = resumable_config(dir, "softmax");
  config.out_dir = dir + "/run";
  TrainOptions stop;
  stop.stop_at = 4;
  train(config, stop);
  try {
    resume(dir + "/run", {"model.n_layer=2", "optim.beta1=0.8"});
    FAIL() << "expected UsageError";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("model.n_layer"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("optim.beta1"), std::string::npos) << e.what();
  }
  // A normalizer switch brings its own keys, not every attention key: document masking stays as trained.
  try {
    resume(dir + "/run", {"model.attention.normalizer=ssmax", "model.attention.document_mask=true"});
    FAIL() << "expected UsageError";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("model.attention.document_mask"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("model.attention.normalizer,"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(resume(dir + "/run", {"train.max_steps=6", "optim.lr=1e-3"}));
}

TEST(Resume, TheSchemaSaysWhichKeysMayChange) {
  const auto changeable = config_keys_changeable_on_resume();
  const auto with_switch = config_keys_changeable_on_resume(OnResume::WithNormalizerSwitch);
  auto has = [](const std::vector<std::string>& keys, const char* key) {
    return std::find(keys.begin(), keys.end(), key) != keys.end();
  };
  for (const char* key : {"train.max_steps", "optim.lr", "device", "threads", "train.grad_accum_steps"})
    EXPECT_TRUE(has(changeable, key)) << key;
  for (const char* key : {"model.n_layer", "optim.beta1", "seed", "model.attention.document_mask", "data.sources"})
    EXPECT_FALSE(has(changeable, key) || has(with_switch, key)) << key;
  EXPECT_TRUE(has(with_switch, "model.attention.normalizer"));
  EXPECT_TRUE(has(with_switch, "model.attention.s_init"));
}

// Trains `config` to step 4, lets `poison` damage the model or optimizer of the step-4 checkpoint (kept valid on disk),
// resumes, and expects the run to stop with `message`, leaving that checkpoint as it was and writing no later one.
void expect_resume_stops_on_non_finite(Config config, const std::string& dir, const std::string& message,
                                       const std::function<void(GPT&, torch::optim::Optimizer&)>& poison) {
  config.out_dir = dir + "/run";
  TrainOptions stop;
  stop.stop_at = 4;
  train(config, stop);
  const std::string path = checkpoint_path(dir + "/run", 4);
  auto meta = read_checkpoint_meta(path);
  GPT model(GPTOptions{config.model, meta.vocab_size});
  auto optimizer = make_optimizer(*model, config.optim);
  meta = load_checkpoint(path, model, optimizer.get());
  {
    torch::NoGradGuard no_grad;
    poison(model, *optimizer);
  }
  save_checkpoint(path, model, *optimizer, meta);
  const std::string before = read_file(path);
  try {
    resume(dir + "/run", {});
    FAIL() << "expected RuntimeFailure";
  } catch (const RuntimeFailure& e) {
    EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_file(path), before);  // the last good checkpoint is untouched
  EXPECT_FALSE(std::filesystem::exists(checkpoint_path(dir + "/run", 5)));
}

TEST(Resume, NonFiniteLossStopsNamingStepAndKeepsLastCheckpoint) {
  const std::string dir = test_dir("resume-nonfinite");
  // NaN weights: step 5's loss is NaN.
  expect_resume_stops_on_non_finite(
      resumable_config(dir, "softmax"), dir, "non-finite loss at step 5", [](GPT& model, torch::optim::Optimizer&) {
        model->named_parameters()["ln_f.weight"].fill_(std::numeric_limits<float>::quiet_NaN());
      });
}

// NaN optimizer state: step 5's loss and gradients are finite, its update is not, so the evaluation after it is the
// first to see the damage. It must stop the run like a non-finite training loss.
TEST(Resume, NonFiniteValidationLossStopsLikeATrainingLoss) {
  const std::string dir = test_dir("resume-nonfinite-val");
  Config config = resumable_config(dir, "softmax");
  config.train.eval_every = 1;
  expect_resume_stops_on_non_finite(
      config, dir, "non-finite validation loss at step 5", [](GPT&, torch::optim::Optimizer& optimizer) {
        for (auto& [key, state] : optimizer.state())
          static_cast<torch::optim::AdamWParamState&>(*state).exp_avg().fill_(std::numeric_limits<float>::quiet_NaN());
      });
}

TEST(Checkpoint, CorruptNewestFallsBackOnlyInAutomaticResume) {
  const std::string dir = test_dir("resume-corrupt");
  Config config = resumable_config(dir, "softmax");
  config.out_dir = dir + "/run";
  TrainOptions stop;
  stop.stop_at = 8;
  train(config, stop);
  const std::string newest = checkpoint_path(dir + "/run", 8);
  fs::resize_file(newest, fs::file_size(newest) / 2);
  EXPECT_THROW(verify_checkpoint(newest), RuntimeFailure);
  EXPECT_EQ(find_resume_checkpoint(dir + "/run"), checkpoint_path(dir + "/run", 4));
  EXPECT_THROW(resume(newest, {}), RuntimeFailure);  // an explicit file gets no fallback
}

TEST(Checkpoint, RetentionKeepsNewestAndBestAndCleansLeftovers) {
  const std::string dir = test_dir("checkpoint-retention");
  fs::create_directories(dir + "/checkpoints");
  const std::vector<std::pair<int64_t, double>> steps = {{10, 3.0}, {20, 2.5}, {30, 2.7}, {40, 2.8}, {50, 2.9}};
  for (const auto& [step, val] : steps) {
    const std::string path = checkpoint_path(dir, step);
    std::ofstream(path) << "archive";
    std::ofstream(fs::path(path).replace_extension(".json").string())
        << json{{"step", step}, {"bytes", 7}, {"hash", "x"}, {"val_loss", val}}.dump();
  }
  std::ofstream(checkpoint_path(dir, 60) + ".tmp") << "torn";  // a write killed midway
  std::ofstream(checkpoint_path(dir, 5)) << "no manifest";     // killed between archive and manifest
  prune_checkpoints(dir, 2);
  std::vector<int64_t> kept;
  for (const auto& entry : list_checkpoints(dir)) kept.push_back(entry.step);
  EXPECT_EQ(kept, (std::vector<int64_t>{20, 40, 50}));  // best (2.5) + newest two
  EXPECT_FALSE(fs::exists(checkpoint_path(dir, 60) + ".tmp"));
  EXPECT_FALSE(fs::exists(checkpoint_path(dir, 5)));
  EXPECT_FALSE(fs::exists(checkpoint_path(dir, 10)));
}

TEST(Checkpoint, RejectsNonCheckpointsEmptyRunsAndNewerFormats) {
  const std::string dir = test_dir("checkpoint-bad");
  { std::ofstream(dir + "/notes.pt") << "not a checkpoint"; }
  EXPECT_THROW(read_checkpoint_meta(dir + "/notes.pt"), RuntimeFailure);
  fs::create_directories(dir + "/empty-run");
  { std::ofstream(dir + "/empty-run/config.json") << "{}"; }
  EXPECT_THROW(find_resume_checkpoint(dir + "/empty-run"), RuntimeFailure);

  ModelConfig m;
  m.n_layer = 1;
  m.n_embd = 8;
  m.n_head = 2;
  m.block_size = 8;
  GPT model(GPTOptions{m, 20});
  torch::optim::AdamW optimizer(model->parameters());
  CheckpointMeta meta;
  meta.format_version = kCheckpointVersion + 1;
  meta.vocab_size = 20;
  meta.config = json::object();
  save_checkpoint(dir + "/future.pt", model, optimizer, meta);
  try {
    read_checkpoint_meta(dir + "/future.pt");
    FAIL() << "expected RuntimeFailure";
  } catch (const RuntimeFailure& e) {
    EXPECT_NE(std::string(e.what()).find("newer"), std::string::npos) << e.what();
  }
  // A checkpoint of another shape does not load into this model.
  meta.format_version = kCheckpointVersion;
  save_checkpoint(dir + "/small.pt", model, optimizer, meta);
  m.n_embd = 16;
  GPT wider(GPTOptions{m, 20});
  EXPECT_THROW(load_checkpoint(dir + "/small.pt", wider, nullptr), RuntimeFailure);
}

// A checkpoint written before model.vocab_multiple existed holds unpadded embeddings (20 rows) and a config
// without the key: it reads as vocab_multiple = 1 and loads into the model that config describes.
TEST(Checkpoint, ModelsFromBeforeVocabularyPaddingStillLoad) {
  const std::string dir = test_dir("checkpoint_unpadded");
  Config config;
  config.model.n_layer = 1;
  config.model.n_embd = 8;
  config.model.n_head = 2;
  config.model.block_size = 8;
  config.model.vocab_multiple = 1;
  torch::manual_seed(4);
  GPT model(GPTOptions{config.model, 20});
  torch::optim::AdamW optimizer(model->parameters());
  CheckpointMeta meta;
  meta.vocab_size = 20;
  meta.config = config_to_json(config);
  meta.config["model"].erase("vocab_multiple");
  save_checkpoint(dir + "/old.pt", model, optimizer, meta);

  const auto stored = read_checkpoint_meta(dir + "/old.pt");
  EXPECT_EQ(stored.config["model"]["vocab_multiple"], 1);
  GPT loaded(GPTOptions{config_from_json(stored.config, "old.pt").model, stored.vocab_size});
  load_checkpoint(dir + "/old.pt", loaded, nullptr);
  EXPECT_TRUE(torch::equal(loaded->wte->weight, model->wte->weight));
  // The same checkpoint under today's default (64 rows) is refused, never misread.
  config.model.vocab_multiple = 64;
  GPT padded(GPTOptions{config.model, 20});
  EXPECT_THROW(load_checkpoint(dir + "/old.pt", padded, nullptr), RuntimeFailure);
}

}  // namespace
}  // namespace ssmax
