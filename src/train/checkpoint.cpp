#include "train/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <set>

#include <spdlog/spdlog.h>

#include "util/errors.h"
#include "util/files.h"
#include "util/hash.h"

namespace ssmax {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Where the model's parameters live: checkpoints load onto it, whichever device wrote them.
torch::Device model_device(GPT& model) {
  auto parameters = model->parameters();
  return parameters.empty() ? torch::Device(torch::kCPU) : parameters.front().device();
}

torch::Tensor generator_state(const torch::Device& device) {
  auto generator = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state();
}

void set_generator_state(const torch::Device& device, const torch::Tensor& state) {
  auto generator = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state.to(torch::kCPU));
}

void fsync_path(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

std::string manifest_path(const std::string& checkpoint) {
  return (fs::path(checkpoint).replace_extension(".json")).string();
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
          {"dataset_fingerprint", dataset_fingerprint}, {"dataset_dir", dataset_dir},
          {"interval_loss", interval_loss}, {"interval_steps", interval_steps},
          {"metrics_bytes", metrics_bytes}, {"log_bytes", log_bytes}, {"world_size", world_size}};
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
    m.interval_loss = j.value("interval_loss", 0.0);
    m.interval_steps = j.value("interval_steps", int64_t{0});
    m.metrics_bytes = j.value("metrics_bytes", uint64_t{0});
    m.log_bytes = j.value("log_bytes", uint64_t{0});
    m.world_size = j.value("world_size", 1);
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
  archive.write("rng_cpu", generator_state(torch::kCPU), /*is_buffer=*/true);
  const torch::Device device = model_device(model);
  if (device.is_cuda()) archive.write("rng_cuda", generator_state(device), /*is_buffer=*/true);
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
  Hasher64 hasher;
  const uint64_t bytes = hash_file_into(hasher, path);
  json manifest = {{"step", meta.step}, {"bytes", bytes}, {"hash", hasher.hex()},
                   {"val_loss", number_or_null(meta.step_val_loss)}};
  write_file_atomic(manifest_path(path), manifest.dump() + "\n");
  write_file_atomic((fs::path(path).parent_path() / "latest").string(), fs::path(path).filename().string() + "\n");
  fsync_path(fs::path(path).parent_path().string(), O_RDONLY | O_DIRECTORY);
}

namespace {

// Tensors are mapped onto `device` as they load: a checkpoint written on CUDA opens on a CPU-only machine.
torch::serialize::InputArchive open_archive(const std::string& path, const torch::Device& device = torch::kCPU) {
  if (!fs::is_regular_file(path)) throw RuntimeFailure(path + ": checkpoint file does not exist");
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path, device);
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

namespace {

bool is_normalizer_tensor(const std::string& name) { return name.find("normalizer.") != std::string::npos; }

// Module::save nests one sub-archive per submodule ("h" → "0" → "attn" → …): walk it by dotted name.
bool read_nested(torch::serialize::InputArchive& archive, const std::string& name, torch::Tensor& out, bool is_buffer) {
  const auto dot = name.find('.');
  if (dot == std::string::npos) return archive.try_read(name, out, is_buffer);
  torch::serialize::InputArchive child;
  if (!archive.try_read(name.substr(0, dot), child)) return false;
  return read_nested(child, name.substr(dot + 1), out, is_buffer);
}

void collect_names(torch::serialize::InputArchive& archive, const std::string& prefix, std::vector<std::string>& out) {
  for (const auto& key : archive.keys()) {
    if (key == "training") continue;  // bookkeeping attribute of the archive itself
    torch::serialize::InputArchive child;
    if (archive.try_read(key, child)) collect_names(child, prefix + key + ".", out);
    else out.push_back(prefix + key);
  }
}

// Copies every model tensor from the archive, checking names and shapes; returns the names it did not find.
std::vector<std::string> load_model_tensors(torch::serialize::InputArchive& archive, GPT& model,
                                            const std::string& path, bool allow_missing_normalizer) {
  torch::NoGradGuard no_grad;
  std::vector<std::string> missing, mismatched;
  std::set<std::string> known;
  auto load = [&](const std::string& name, torch::Tensor& target, bool is_buffer) {
    known.insert(name);
    torch::Tensor stored;
    if (!read_nested(archive, name, stored, is_buffer)) {
      missing.push_back(name);
      return;
    }
    if (stored.sizes() != target.sizes()) {
      mismatched.push_back(name + " " + c10::str(stored.sizes()) + " vs " + c10::str(target.sizes()));
      return;
    }
    target.copy_(stored);
  };
  for (auto& item : model->named_parameters()) load(item.key(), item.value(), false);
  for (auto& item : model->named_buffers()) load(item.key(), item.value(), true);
  std::vector<std::string> stored_names;
  collect_names(archive, "", stored_names);
  std::vector<std::string> unexpected;
  for (const auto& name : stored_names)
    if (!known.count(name)) unexpected.push_back(name);
  auto list = [](const std::vector<std::string>& v) {
    std::string out;
    for (size_t i = 0; i < v.size() && i < 4; ++i) out += (i ? ", " : "") + v[i];
    return v.size() > 4 ? out + ", …" : out;
  };
  bool missing_ok = std::all_of(missing.begin(), missing.end(), [&](const std::string& n) {
    return allow_missing_normalizer && is_normalizer_tensor(n);
  });
  if (!mismatched.empty() || !unexpected.empty() || !missing_ok)
    throw RuntimeFailure(path + ": checkpoint does not match this model (" +
                         (!mismatched.empty() ? "shape differs: " + list(mismatched)
                          : !unexpected.empty() ? "tensors this model lacks: " + list(unexpected)
                                                : "tensors missing: " + list(missing)) +
                         "); was it written with a different model config?");
  return missing;
}

}  // namespace

CheckpointMeta load_checkpoint(const std::string& path, GPT& model, torch::optim::AdamW* optimizer,
                               bool new_normalizer_parameters) {
  const torch::Device device = model_device(model);
  auto archive = open_archive(path, device);  // AdamW's moments land on the parameters' device too
  CheckpointMeta meta = read_meta(archive, path);
  try {
    torch::serialize::InputArchive model_archive;
    archive.read("model", model_archive);
    auto fresh = load_model_tensors(model_archive, model, path, new_normalizer_parameters);
    if (!optimizer) return meta;
    torch::serialize::InputArchive optimizer_archive;
    archive.read("optimizer", optimizer_archive);
    if (fresh.empty()) {
      optimizer->load(optimizer_archive);
    } else {
      // The stored state covers the old parameters only: load it into an optimizer over those, then
      // move it over (state is keyed by tensor identity); the new s/b start with empty state.
      std::set<const void*> fresh_tensors;
      auto named = model->named_parameters();
      for (const auto& name : fresh) fresh_tensors.insert(named[name].unsafeGetTensorImpl());
      std::vector<torch::optim::OptimizerParamGroup> groups;
      for (auto& group : optimizer->param_groups()) {
        std::vector<torch::Tensor> kept;
        for (const auto& p : group.params())
          if (!fresh_tensors.count(p.unsafeGetTensorImpl())) kept.push_back(p);
        groups.emplace_back(kept, group.options().clone());
      }
      torch::optim::AdamW old_layout(groups);
      old_layout.load(optimizer_archive);
      for (auto& [key, state] : old_layout.state()) optimizer->state()[key] = std::move(state);
    }
    torch::Tensor rng;
    archive.read("rng_cpu", rng, /*is_buffer=*/true);
    set_generator_state(torch::kCPU, rng);
    // The CUDA generator (dropout on the GPU) continues only where a CUDA run continues on CUDA.
    if (device.is_cuda() && archive.try_read("rng_cuda", rng, /*is_buffer=*/true)) set_generator_state(device, rng);
  } catch (const c10::Error& e) {
    throw RuntimeFailure(path + ": cannot restore from checkpoint (" +
                         std::string(e.what_without_backtrace()).substr(0, 200) + ")");
  }
  return meta;
}

std::string checkpoint_path(const std::string& run_dir, int64_t step) {
  char name[64];
  std::snprintf(name, sizeof(name), "step_%08lld.pt", static_cast<long long>(step));
  return (fs::path(run_dir) / "checkpoints" / name).string();
}

std::vector<CheckpointEntry> list_checkpoints(const std::string& run_dir) {
  std::vector<CheckpointEntry> entries;
  fs::path dir = fs::path(run_dir) / "checkpoints";
  if (!fs::is_directory(dir)) return entries;
  for (const auto& file : fs::directory_iterator(dir)) {
    const auto name = file.path().filename().string();
    if (!file.is_regular_file() || name.rfind("step_", 0) != 0 || file.path().extension() != ".pt") continue;
    const std::string manifest_file = manifest_path(file.path().string());
    if (!fs::exists(manifest_file)) continue;  // a write that did not finish
    json manifest = json::parse(read_file(manifest_file), nullptr, false);
    if (manifest.is_discarded() || !manifest.contains("step")) continue;
    CheckpointEntry entry;
    entry.path = file.path().string();
    entry.step = manifest["step"].get<int64_t>();
    entry.val_loss = number_or(manifest, "val_loss", std::numeric_limits<double>::quiet_NaN());
    entries.push_back(entry);
  }
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.step < b.step; });
  return entries;
}

void verify_checkpoint(const std::string& path) {
  if (!fs::is_regular_file(path)) throw RuntimeFailure(path + ": checkpoint file does not exist");
  const std::string manifest_file = manifest_path(path);
  if (!fs::exists(manifest_file))
    throw RuntimeFailure(path + ": no manifest " + fs::path(manifest_file).filename().string() +
                         " beside it (the write did not finish, or this is not an ssmax-gpt checkpoint)");
  json manifest = json::parse(read_file(manifest_file), nullptr, false);
  if (manifest.is_discarded() || !manifest.contains("bytes") || !manifest.contains("hash"))
    throw RuntimeFailure(manifest_file + ": checkpoint manifest is not valid JSON with bytes and hash");
  Hasher64 hasher;
  const uint64_t bytes = hash_file_into(hasher, path);
  if (bytes != manifest["bytes"].get<uint64_t>() || hasher.hex() != manifest["hash"].get<std::string>())
    throw RuntimeFailure(path + ": checkpoint is corrupted or truncated (" + std::to_string(bytes) + " bytes, hash " +
                         hasher.hex() + "; manifest says " + std::to_string(manifest["bytes"].get<uint64_t>()) +
                         " bytes, hash " + manifest["hash"].get<std::string>() + ")");
}

std::string find_resume_checkpoint(const std::string& run_dir) {
  auto entries = list_checkpoints(run_dir);
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    try {
      verify_checkpoint(it->path);
      return it->path;
    } catch (const RuntimeFailure& e) {
      spdlog::warn("skipping bad checkpoint: {}", e.what());
    }
  }
  throw RuntimeFailure(run_dir + ": no valid checkpoint to resume from (checkpoints/ is empty or every file is damaged)");
}

std::string resolve_checkpoint(const std::string& target) {
  if (fs::is_regular_file(target)) {
    verify_checkpoint(target);
    return target;
  }
  if (fs::is_directory(target)) {
    if (!fs::exists(fs::path(target) / "config.json"))
      throw UsageError(target + ": not a run directory (no config.json) and not a checkpoint file");
    return find_resume_checkpoint(target);
  }
  throw UsageError(target + ": no such checkpoint file or run directory");
}

void prune_checkpoints(const std::string& run_dir, int keep_last) {
  auto entries = list_checkpoints(run_dir);
  const CheckpointEntry* best = nullptr;
  for (const auto& e : entries)
    if (std::isfinite(e.val_loss) && (!best || e.val_loss < best->val_loss)) best = &e;
  std::vector<std::string> doomed;
  for (size_t i = 0; i + keep_last < entries.size(); ++i)
    if (&entries[i] != best) doomed.push_back(entries[i].path);
  // Leftovers of interrupted writes: temp files, archives whose manifest never got written.
  const int64_t newest = entries.empty() ? 0 : entries.back().step;
  for (const auto& file : fs::directory_iterator(fs::path(run_dir) / "checkpoints")) {
    const auto p = file.path();
    if (p.extension() == ".tmp") fs::remove(p);
    else if (p.extension() == ".pt" && !fs::exists(manifest_path(p.string())) && p.string() < checkpoint_path(run_dir, newest))
      fs::remove(p);
  }
  for (const auto& path : doomed) {
    fs::remove(manifest_path(path));  // manifest first: a half-deleted pair is then simply ignored
    fs::remove(path);
  }
}

}  // namespace ssmax
