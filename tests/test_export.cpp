// safetensors export: names, shapes, dtypes and values match the checkpoint.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "export/export_model.h"
#include "export/safetensors.h"
#include "test_util.h"
#include "train/checkpoint.h"
#include "util/errors.h"
#include "util/files.h"

namespace ssmax {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

std::string make_checkpoint(const std::string& dir, bool tied) {
  Config config;
  config.model.n_layer = 2;
  config.model.n_head = 2;
  config.model.n_embd = 8;
  config.model.block_size = 16;
  config.model.position = "rope";
  config.model.mlp = "swiglu";
  config.model.tie_embeddings = tied;
  config.model.attention.normalizer = Normalizer::SSMaxBias;
  torch::manual_seed(1);
  GPT model(GPTOptions{config.model, 30});
  torch::optim::AdamW optimizer(model->parameters());
  CheckpointMeta meta;
  meta.step = 7;
  meta.vocab_size = 30;
  meta.config = config_to_json(config);
  fs::create_directories(dir + "/run/checkpoints");
  { std::ofstream(dir + "/run/config.json") << meta.config.dump(); }
  const std::string path = checkpoint_path(dir + "/run", 7);
  save_checkpoint(path, model, optimizer, meta);
  return path;
}

TEST(Export, SafetensorsMatchCheckpointExactly) {
  const std::string dir = test_dir("export");
  const std::string checkpoint = make_checkpoint(dir, /*tied=*/false);
  auto result = export_checkpoint(dir + "/run", dir + "/model.safetensors", false);
  EXPECT_EQ(result.checkpoint, checkpoint);
  EXPECT_EQ(result.step, 7);

  auto meta = read_checkpoint_meta(checkpoint);
  GPT model(GPTOptions{config_from_json(meta.config, "test").model, 30});
  load_checkpoint(checkpoint, model, nullptr);
  auto file = read_safetensors(dir + "/model.safetensors");
  auto params = model->named_parameters();
  ASSERT_EQ(file.tensors.size(), params.size());
  for (const auto& item : params) {
    ASSERT_TRUE(file.tensors.count(item.key())) << item.key();
    const auto& stored = file.tensors.at(item.key());
    EXPECT_EQ(stored.scalar_type(), torch::kFloat32);
    // The vocabulary padding (30 → 64 rows) stays home: exported rows are the tokenizer's 30.
    const bool vocab_rows = item.key() == "wte.weight" || item.key() == "lm_head.weight";
    const auto expected = vocab_rows ? item.value().narrow(0, 0, 30) : item.value();
    EXPECT_EQ(stored.sizes(), expected.sizes()) << item.key();
    EXPECT_TRUE(torch::equal(stored, expected.detach())) << item.key();
  }
  EXPECT_EQ(file.tensors.at("h.1.attn.normalizer.s").sizes(), (std::vector<int64_t>{2}));
  EXPECT_TRUE(file.tensors.count("lm_head.weight"));
  EXPECT_EQ(file.metadata.at("ssmax_gpt_step"), "7");

  json config = json::parse(read_file(dir + "/model.config.json"));
  EXPECT_EQ(config["vocab_size"], 30);
  EXPECT_EQ(config["config"]["model"]["attention"]["normalizer"], "ssmax_bias");
  EXPECT_TRUE(config["conventions"].contains("rope"));

  // The layout on disk is the published one: u64 header length, JSON header padded to 8 bytes.
  const std::string bytes = read_file(dir + "/model.safetensors");
  uint64_t header = 0;
  std::memcpy(&header, bytes.data(), 8);
  EXPECT_EQ(header % 8, 0u);
  EXPECT_EQ(bytes[8], '{');
}

TEST(Export, TiedModelsHaveNoSeparateHeadAndFilesAreNotOverwritten) {
  const std::string dir = test_dir("export-tied");
  const std::string checkpoint = make_checkpoint(dir, /*tied=*/true);
  export_checkpoint(checkpoint, dir + "/m.safetensors", false);
  EXPECT_FALSE(read_safetensors(dir + "/m.safetensors").tensors.count("lm_head.weight"));
  EXPECT_THROW(export_checkpoint(checkpoint, dir + "/m.safetensors", false), UsageError);
  EXPECT_NO_THROW(export_checkpoint(checkpoint, dir + "/m.safetensors", true));
  EXPECT_THROW(export_checkpoint(checkpoint, dir + "/m.bin", false), UsageError);
  EXPECT_THROW(export_checkpoint(dir + "/nowhere", dir + "/x.safetensors", false), UsageError);
}

TEST(Export, TruncatedSafetensorsAreRejected) {
  const std::string dir = test_dir("export-truncated");
  export_checkpoint(make_checkpoint(dir, true), dir + "/m.safetensors", false);
  fs::resize_file(dir + "/m.safetensors", fs::file_size(dir + "/m.safetensors") - 4);
  EXPECT_THROW(read_safetensors(dir + "/m.safetensors"), RuntimeFailure);
}

}  // namespace
}  // namespace ssmax
