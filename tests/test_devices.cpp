// Devices and precision: checkpoints written on CUDA load on a CPU-only machine, bf16 autocast trains, and (on a
// machine with a GPU; skipped elsewhere) CUDA computes what the CPU computes.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <caffe2/serialize/inline_container.h>

#include <filesystem>
#include <iostream>

#include "test_util.h"
#include "train/checkpoint.h"
#include "train/optimizer.h"
#include "train/precision.h"
#include "train/trainer.h"
#include "util/errors.h"

namespace ssmax {
namespace {
namespace fs = std::filesystem;

Config small_model_config(const std::string& normalizer) {
  Config config;
  config.model.n_layer = 2;
  config.model.n_head = 4;
  config.model.n_embd = 64;
  config.model.block_size = 128;
  config.model.position = "rope";
  config.model.norm = "rmsnorm";
  config.model.mlp = "swiglu";
  config.model.tie_embeddings = false;
  config.model.attention.normalizer = *normalizer_from_name(normalizer);
  return config;
}

// A model whose SSMax s and b differ per head (they start equal), with one AdamW step taken so the optimizer
// has state to save.
std::pair<GPT, std::unique_ptr<torch::optim::AdamW>> trained_one_step(const Config& config, int64_t vocab) {
  torch::manual_seed(4);
  GPT model(GPTOptions{config.model, vocab});
  {
    torch::NoGradGuard no_grad;
    for (auto& item : model->named_parameters())
      if (item.key().find("normalizer.") != std::string::npos) item.value().uniform_(0.3, 1.2);
  }
  auto optimizer = make_optimizer(*model, config.optim);
  auto idx = torch::randint(vocab, {2, 16}, torch::kLong);
  model->loss(idx, idx.roll(1, 1)).backward();
  optimizer->step();
  return {model, std::move(optimizer)};
}

// Rewrites a torch archive as if its tensors had been saved on cuda:0: the pickled storage locations are the
// BINUNICODE strings "cpu", which become "cuda:0". Returns how many it changed.
int relabel_storages_as_cuda(const std::string& in, const std::string& out) {
  caffe2::serialize::PyTorchStreamReader reader(in);
  caffe2::serialize::PyTorchStreamWriter writer(out);
  writer.setMinVersion(reader.version());
  const std::string cpu("X\x03\x00\x00\x00"
                        "cpu",
                        8),
      cuda("X\x06\x00\x00\x00"
           "cuda:0",
           11);
  int changed = 0;
  for (const auto& name : reader.getAllRecords()) {
    if (name == "version" || name == ".data/version" || name == "byteorder" || name == ".data/serialization_id")
      continue;  // the writer adds these itself
    auto [data, size] = reader.getRecord(name);
    std::string bytes(static_cast<const char*>(data.get()), size);
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".pkl") == 0)
      for (size_t at = bytes.find(cpu); at != std::string::npos; at = bytes.find(cpu, at + cuda.size())) {
        bytes.replace(at, cpu.size(), cuda);
        ++changed;
      }
    writer.writeRecord(name, bytes.data(), bytes.size());
  }
  writer.writeEndOfFile();
  return changed;
}

TEST(Devices, CheckpointWrittenOnCudaLoadsOnCpu) {
  const std::string dir = test_dir("devices-cuda-checkpoint");
  const Config config = small_model_config("ssmax_bias");
  auto [model, optimizer] = trained_one_step(config, 50);
  CheckpointMeta meta;
  meta.step = 1;
  meta.vocab_size = 50;
  meta.config = config_to_json(config);
  const std::string written = dir + "/cpu.pt", relabelled = dir + "/cuda.pt";
  save_checkpoint(written, model, *optimizer, meta);
  // The pickler memoises the string: one occurrence serves every storage.
  ASSERT_GE(relabel_storages_as_cuda(written, relabelled), 1);
  if (!torch::cuda::is_available()) {
    // Proof that the relabelling took: without a map location, LibTorch tries to put the tensors on CUDA.
    torch::serialize::InputArchive archive;
    EXPECT_THROW(archive.load_from(relabelled), c10::Error);
  }

  torch::manual_seed(99);  // different initial weights: everything must come from the checkpoint
  GPT loaded(GPTOptions{config.model, 50});
  auto loaded_optimizer = make_optimizer(*loaded, config.optim);
  load_checkpoint(relabelled, loaded, loaded_optimizer.get());
  auto original = model->named_parameters();
  for (const auto& item : loaded->named_parameters()) {
    EXPECT_EQ(item.value().device().type(), torch::kCPU) << item.key();
    EXPECT_TRUE(torch::equal(item.value(), original[item.key()])) << item.key();
  }
  // The optimizer state came along (on the CPU): the next step is the one the original takes.
  auto idx = torch::randint(50, {2, 16}, torch::kLong);
  for (auto* m : {&model, &loaded}) {
    (*m)->zero_grad();
    (*m)->loss(idx, idx.roll(1, 1)).backward();
  }
  optimizer->step();
  loaded_optimizer->step();
  original = model->named_parameters();
  for (const auto& item : loaded->named_parameters())
    EXPECT_TRUE(torch::equal(item.value(), original[item.key()])) << item.key();
}

TEST(Precision, Bf16AutocastTrainsWithFloat32MasterWeights) {
  const std::string dir = test_dir("precision-bf16");
  std::vector<std::vector<nlohmann::json>> metrics;
  const Config base = tiny_training_config(dir, "ssmax");
  for (const char* precision : {"fp32", "bf16"}) {
    Config config = base;
    config.train.precision = precision;
    config.out_dir = dir + "/" + precision;
    const auto summary = train(config);
    EXPECT_TRUE(std::isfinite(summary.final_val_loss)) << precision;
    metrics.push_back(comparable_metrics(config.out_dir));
    auto meta = read_checkpoint_meta(summary.last_checkpoint);
    GPT model(GPTOptions{config.model, meta.vocab_size});
    load_checkpoint(summary.last_checkpoint, model, nullptr);
    for (const auto& p : model->parameters()) EXPECT_EQ(p.scalar_type(), torch::kFloat32);
  }
  // bf16 rounding shows in the losses: the autocast scope was active.
  ASSERT_EQ(metrics[0].size(), metrics[1].size());
  EXPECT_NE(metrics[0].front()["train_loss"], metrics[1].front()["train_loss"]);
  EXPECT_NEAR(metrics[0].back()["val_loss"].get<double>(), metrics[1].back()["val_loss"].get<double>(), 0.1);
}

TEST(Precision, Tf32NeedsCuda) {
  TrainConfig train;
  train.tf32 = true;
  try {
    configure_precision(train, torch::kCPU);
    FAIL() << "train.tf32 on the CPU was accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("train.tf32"), std::string::npos) << e.what();
  }
  train.tf32 = false;
  EXPECT_NO_THROW(configure_precision(train, torch::kCPU));
}

// On a GPU machine (scripts/gpu_check.sh runs these): the CUDA forward pass against the CPU's, float32 (TF32 off)
// and bf16 autocast, for each normalizer; the differences are printed for the record.
TEST(Cuda, ForwardMatchesCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  for (const char* normalizer : {"softmax", "ssmax", "ssmax_bias"}) {
    SCOPED_TRACE(normalizer);
    const Config config = small_model_config(normalizer);
    auto [model, optimizer] = trained_one_step(config, 512);
    model->eval();
    torch::NoGradGuard no_grad;
    auto idx = torch::randint(512, {4, 128}, torch::kLong);
    const auto cpu = model->forward(idx);
    configure_precision(config.train, torch::kCUDA);
    model->to(torch::kCUDA);
    const auto fp32 = model->forward(idx.to(torch::kCUDA)).cpu();
    torch::Tensor bf16;
    {
      AutocastScope autocast(torch::kCUDA, true);
      bf16 = model->forward(idx.to(torch::kCUDA)).to(torch::kCPU, torch::kFloat32);
    }
    const double fp32_diff = (fp32 - cpu).abs().max().item<double>();
    const double bf16_diff = (bf16 - cpu).abs().max().item<double>();
    const double scale = cpu.abs().max().item<double>();
    std::cout << "cuda-vs-cpu " << normalizer << ": fp32 max|Δ| " << fp32_diff << ", bf16 max|Δ| " << bf16_diff
              << " (max |logit| " << scale << ")\n";
    EXPECT_LE(fp32_diff, 1e-4);
    EXPECT_LE(bf16_diff, 0.05 * std::max(1.0, scale));
  }
}

// On a GPU machine: the gradients of one training step on CUDA in float32 (TF32 off) against the CPU's, per
// parameter within 1e-3 of its largest gradient (summation order differs between the devices; a wrong backward
// kernel errs by O(1) of it). Printed for the record.
TEST(Cuda, GradientsMatchCpuInFloat32) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  for (const char* normalizer : {"softmax", "ssmax", "ssmax_bias"}) {
    SCOPED_TRACE(normalizer);
    const Config config = small_model_config(normalizer);
    auto [model, optimizer] = trained_one_step(config, 512);
    const auto idx = torch::randint(512, {4, 128}, torch::kLong), targets = idx.roll(-1, 1);
    model->zero_grad();
    model->loss(idx, targets).backward();
    std::vector<std::pair<std::string, torch::Tensor>> cpu;
    for (const auto& item : model->named_parameters())
      if (item.value().grad().defined()) cpu.emplace_back(item.key(), item.value().grad().clone());
    configure_precision(config.train, torch::kCUDA);
    model->to(torch::kCUDA);
    model->zero_grad();
    model->loss(idx.to(torch::kCUDA), targets.to(torch::kCUDA)).backward();
    double worst = 0;
    for (const auto& [name, expected] : cpu) {
      const auto actual = model->named_parameters()[name].grad().cpu();
      const double scale = expected.abs().max().item<double>() + 1e-12;
      const double relative = (actual - expected).abs().max().item<double>() / scale;
      worst = std::max(worst, relative);
      EXPECT_LE(relative, 1e-3) << name;
    }
    std::cout << "cuda-vs-cpu gradients " << normalizer << ": largest relative max|Δ| " << worst << "\n";
  }
}

// On a GPU machine: decoding with the KV cache on CUDA gives the logits of the full pass.
TEST(Cuda, CachedDecodingMatchesTheFullPass) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  for (const char* normalizer : {"softmax", "ssmax_bias"}) {
    SCOPED_TRACE(normalizer);
    const Config config = small_model_config(normalizer);
    auto [model, optimizer] = trained_one_step(config, 512);
    configure_precision(config.train, torch::kCUDA);
    model->to(torch::kCUDA);
    model->eval();
    torch::NoGradGuard no_grad;
    const auto x = torch::randint(512, {1, 48}, torch::kLong).to(torch::kCUDA);
    const auto full = model->forward(x);
    std::vector<KVCache> caches;
    std::vector<torch::Tensor> rows{model->forward(x.narrow(1, 0, 32), &caches)};
    for (int64_t t = 32; t < 48; ++t) rows.push_back(model->forward(x.narrow(1, t, 1), &caches));
    EXPECT_TRUE(torch::allclose(torch::cat(rows, 1), full, 1e-4, 1e-4))
        << "max|Δ| " << (torch::cat(rows, 1) - full).abs().max().item<double>();
  }
}

}  // namespace
}  // namespace ssmax
