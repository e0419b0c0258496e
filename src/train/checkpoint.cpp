#include "train/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <mutex>

#include "util/errors.h"

namespace ssmax {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

void fsync_path(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }
double number_or(const json& j, const char* key, double fallback) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : fallback;
}

}  // namespace

json CheckpointMeta::to_json() const {
  return {{"format_version", format_version}, {"step", step}, {"tokens", tokens},
          {"best_val_loss", number_or_null(best_val_loss)}, {"last_val_loss", number_or_null(last_val_loss)},
          {"elapsed_s", elapsed_s}, {"vocab_size", vocab_size}, {"config", config},
          {"dataset_fingerprint", dataset_fingerprint}, {"dataset_dir", dataset_dir}};
}

CheckpointMeta CheckpointMeta::from_json(const json& j, const std::string& origin) {
  CheckpointMeta m;
  try {
    m.format_version = j.at("format_version").get<int>();
    if (m.format_version > kCheckpointVersion)
      throw RuntimeFailure(origin + ": checkpoint format version " + std::to_string(m.format_version) +
                           " is newer than this ssmax-gpt understands (" + std::to_string(kCheckpointVersion) +
                           "): update ssmax-gpt");
    m.step = j.at("step").get<int64_t>();
    m.tokens = j.at("tokens").get<int64_t>();
    m.best_val_loss = number_or(j, "best_val_loss", std::numeric_limits<double>::infinity());
    m.last_val_loss = number_or(j, "last_val_loss", std::numeric_limits<double>::quiet_NaN());
    m.elapsed_s = j.value("elapsed_s", 0.0);
    m.vocab_size = j.at("vocab_size").get<int64_t>();
    m.config = j.at("config");
    m.dataset_fingerprint = j.value("dataset_fingerprint", std::string());
    m.dataset_dir = j.value("dataset_dir", std::string());
  } catch (const json::exception& e) {
    throw RuntimeFailure(origin + ": checkpoint metadata is incomplete (" + std::string(e.what()) + ")");
  }
  return m;
}

void save_checkpoint(const std::string& path, GPT& model, torch::optim::Optimizer& optimizer,
                     const CheckpointMeta& meta) {
  torch::serialize::OutputArchive archive, model_archive, optimizer_archive;
  model->save(model_archive);
  optimizer.save(optimizer_archive);
  archive.write("model", model_archive);
  archive.write("optimizer", optimizer_archive);
  archive.write("meta", c10::IValue(meta.to_json().dump()));
  {
    auto generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    archive.write("rng_cpu", generator.get_state(), /*is_buffer=*/true);
  }
  fs::create_directories(fs::path(path).parent_path());
  const std::string temp = path + ".tmp";
  try {
    archive.save_to(temp);
  } catch (const c10::Error& e) {
    std::remove(temp.c_str());
    throw RuntimeFailure(path + ": cannot write checkpoint: " + e.what_without_backtrace());
  }
  fsync_path(temp, O_RDONLY);
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    std::remove(temp.c_str());
    throw RuntimeFailure(path + ": cannot rename the finished checkpoint into place");
  }
  fsync_path(fs::path(path).parent_path().string(), O_RDONLY | O_DIRECTORY);
}

namespace {

torch::serialize::InputArchive open_archive(const std::string& path) {
  if (!fs::is_regular_file(path)) throw RuntimeFailure(path + ": checkpoint file does not exist");
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path);
  } catch (const c10::Error& e) {
    throw RuntimeFailure(path + ": not a readable checkpoint (truncated, corrupted or not a torch archive)");
  }
  return archive;
}

CheckpointMeta read_meta(torch::serialize::InputArchive& archive, const std::string& path) {
  c10::IValue value;
  if (!archive.try_read("meta", value) || !value.isString())
    throw RuntimeFailure(path + ": not an ssmax-gpt checkpoint (no metadata record)");
  json j = json::parse(value.toStringRef(), nullptr, false);
  if (j.is_discarded()) throw RuntimeFailure(path + ": checkpoint metadata is not valid JSON");
  return CheckpointMeta::from_json(j, path);
}

}  // namespace

CheckpointMeta read_checkpoint_meta(const std::string& path) {
  auto archive = open_archive(path);
  return read_meta(archive, path);
}

CheckpointMeta load_checkpoint(const std::string& path, GPT& model, torch::optim::Optimizer* optimizer) {
  auto archive = open_archive(path);
  CheckpointMeta meta = read_meta(archive, path);
  try {
    torch::serialize::InputArchive model_archive;
    archive.read("model", model_archive);
    model->load(model_archive);
    if (optimizer) {
      torch::serialize::InputArchive optimizer_archive;
      archive.read("optimizer", optimizer_archive);
      optimizer->load(optimizer_archive);
      torch::Tensor rng;
      archive.read("rng_cpu", rng, /*is_buffer=*/true);
      auto generator = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(generator.mutex());
      generator.set_state(rng);
    }
  } catch (const c10::Error& e) {
    throw RuntimeFailure(path + ": checkpoint does not match this model (" +
                         std::string(e.what_without_backtrace()).substr(0, 200) + ")");
  }
  return meta;
}

std::string checkpoint_path(const std::string& run_dir, int64_t step) {
  char name[64];
  std::snprintf(name, sizeof(name), "step_%08lld.pt", static_cast<long long>(step));
  return (fs::path(run_dir) / "checkpoints" / name).string();
}

std::vector<std::string> list_checkpoints(const std::string& run_dir) {
  std::vector<std::string> files;
  fs::path dir = fs::path(run_dir) / "checkpoints";
  if (!fs::is_directory(dir)) return files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    auto name = entry.path().filename().string();
    if (entry.is_regular_file() && name.rfind("step_", 0) == 0 && entry.path().extension() == ".pt")
      files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

void prune_checkpoints(const std::string& run_dir, int keep_last) {
  auto files = list_checkpoints(run_dir);
  for (size_t i = 0; i + keep_last < files.size(); ++i) fs::remove(files[i]);
}

}  // namespace ssmax
