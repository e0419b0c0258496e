#include "train/checkpoint_state.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <set>

#include "util/errors.h"

namespace ssmax {
using json = nlohmann::json;

namespace {

json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }
double number_or(const json& j, const char* key, double fallback) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : fallback;
}

}  // namespace

json CheckpointMeta::to_json() const {
  return {{"format_version", format_version},
          {"step", step},
          {"tokens", tokens},
          {"best_val_loss", number_or_null(best_val_loss)},
          {"last_val_loss", number_or_null(last_val_loss)},
          {"elapsed_s", elapsed_s},
          {"vocab_size", vocab_size},
          {"config", config},
          {"dataset_fingerprint", dataset_fingerprint},
          {"dataset_dir", dataset_dir},
          {"interval_loss", interval_loss},
          {"interval_steps", interval_steps},
          {"metrics_bytes", metrics_bytes},
          {"log_bytes", log_bytes},
          {"events_bytes", events_bytes},
          {"world_size", world_size},
          {"cpu_blas_used", cpu_blas_used}};
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
    upgrade_stored_config(m.config);
    m.dataset_fingerprint = j.value("dataset_fingerprint", std::string());
    m.dataset_dir = j.value("dataset_dir", std::string());
    m.interval_loss = j.value("interval_loss", 0.0);
    m.interval_steps = j.value("interval_steps", int64_t{0});
    m.metrics_bytes = j.value("metrics_bytes", uint64_t{0});
    m.log_bytes = j.value("log_bytes", uint64_t{0});
    m.events_bytes = j.value("events_bytes", uint64_t{0});
    m.world_size = j.value("world_size", 1);
    m.cpu_blas_used = j.value("cpu_blas_used", std::string());
  } catch (const json::exception& e) {
    throw RuntimeFailure(origin + ": checkpoint metadata is incomplete (" + std::string(e.what()) + ")");
  }
  return m;
}

// --- meta -------------------------------------------------------------------------------------------------------

void TrainingProgress::save(torch::serialize::OutputArchive& archive) const {
  archive.write("meta", c10::IValue(meta_.to_json().dump()));
}

void TrainingProgress::load(torch::serialize::InputArchive& archive, const std::string& path) {
  meta_ = read(archive, path);
}

CheckpointMeta TrainingProgress::read(torch::serialize::InputArchive& archive, const std::string& path) {
  c10::IValue value;
  if (!archive.try_read("meta", value) || !value.isString())
    throw RuntimeFailure(path + ": not an ssmax-gpt checkpoint (no metadata record)");
  json j = json::parse(value.toStringRef(), nullptr, false);
  if (j.is_discarded()) throw RuntimeFailure(path + ": checkpoint metadata is not valid JSON");
  return CheckpointMeta::from_json(j, path);
}

// --- model ------------------------------------------------------------------------------------------------------

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

std::string first_names(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < 4; ++i) out += (i ? ", " : "") + names[i];
  return names.size() > 4 ? out + ", …" : out;
}

}  // namespace

void ModelState::save(torch::serialize::OutputArchive& archive) const {
  torch::serialize::OutputArchive model_archive;
  model_->save(model_archive);
  archive.write("model", model_archive);
}

// Copies every model tensor from the archive, checking names and shapes.
void ModelState::load(torch::serialize::InputArchive& archive, const std::string& path) {
  torch::serialize::InputArchive stored_model;
  archive.read("model", stored_model);
  torch::NoGradGuard no_grad;
  std::vector<std::string> missing, mismatched;
  std::set<std::string> known;
  auto load_tensor = [&](const std::string& name, torch::Tensor& target, bool is_buffer) {
    known.insert(name);
    torch::Tensor stored;
    if (!read_nested(stored_model, name, stored, is_buffer)) {
      missing.push_back(name);
      return;
    }
    if (stored.sizes() != target.sizes()) {
      mismatched.push_back(name + " " + c10::str(stored.sizes()) + " vs " + c10::str(target.sizes()));
      return;
    }
    target.copy_(stored);
  };
  for (auto& item : model_->named_parameters()) load_tensor(item.key(), item.value(), false);
  for (auto& item : model_->named_buffers()) load_tensor(item.key(), item.value(), true);
  std::vector<std::string> stored_names, unexpected;
  collect_names(stored_model, "", stored_names);
  for (const auto& name : stored_names)
    if (!known.count(name)) unexpected.push_back(name);
  const bool missing_ok = std::all_of(missing.begin(), missing.end(),
                                      [&](const std::string& n) { return allow_new_ && is_normalizer_tensor(n); });
  if (!mismatched.empty() || !unexpected.empty() || !missing_ok)
    throw RuntimeFailure(path + ": checkpoint does not match this model (" +
                         (!mismatched.empty()   ? "shape differs: " + first_names(mismatched)
                          : !unexpected.empty() ? "tensors this model lacks: " + first_names(unexpected)
                                                : "tensors missing: " + first_names(missing)) +
                         "); was it written with a different model config?");
  new_parameters_ = missing;
}

// --- optimizer ----------------------------------------------------------------------------------------------

void OptimizerState::save(torch::serialize::OutputArchive& archive) const {
  torch::serialize::OutputArchive optimizer_archive;
  optimizer_.save(optimizer_archive);
  archive.write("optimizer", optimizer_archive);
}

void OptimizerState::load(torch::serialize::InputArchive& archive, const std::string&) {
  torch::serialize::InputArchive stored;
  archive.read("optimizer", stored);
  const auto& fresh = model_.new_parameters();
  if (fresh.empty()) {
    optimizer_.load(stored);
    return;
  }
  // The stored state covers the old parameters only: load it into an optimizer over those, then move it
  // over (state is keyed by tensor identity); the new s/b start with empty state.
  std::set<const void*> fresh_tensors;
  auto named = model_.model()->named_parameters();
  for (const auto& name : fresh) fresh_tensors.insert(named[name].unsafeGetTensorImpl());
  std::vector<torch::optim::OptimizerParamGroup> groups;
  for (auto& group : optimizer_.param_groups()) {
    std::vector<torch::Tensor> kept;
    for (const auto& p : group.params())
      if (!fresh_tensors.count(p.unsafeGetTensorImpl())) kept.push_back(p);
    groups.emplace_back(kept, group.options().clone());
  }
  torch::optim::AdamW old_layout(groups);
  old_layout.load(stored);
  for (auto& [key, state] : old_layout.state()) optimizer_.state()[key] = std::move(state);
}

// --- random number generators -----------------------------------------------------------------------------------

namespace {

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

}  // namespace

void RngState::save(torch::serialize::OutputArchive& archive) const {
  archive.write("rng_cpu", generator_state(torch::kCPU), /*is_buffer=*/true);
  if (device_.is_cuda()) archive.write("rng_cuda", generator_state(device_), /*is_buffer=*/true);
}

void RngState::load(torch::serialize::InputArchive& archive, const std::string&) {
  torch::Tensor state;
  archive.read("rng_cpu", state, /*is_buffer=*/true);
  set_generator_state(torch::kCPU, state);
  if (device_.is_cuda() && archive.try_read("rng_cuda", state, /*is_buffer=*/true)) set_generator_state(device_, state);
}

// --- the list -----------------------------------------------------------------------------------------------

torch::Device model_device(GPT& model) {
  auto parameters = model->parameters();
  return parameters.empty() ? torch::Device(torch::kCPU) : parameters.front().device();
}

std::vector<CheckpointPart*> StateParts::all() const {
  std::vector<CheckpointPart*> parts = {progress.get(), model.get()};  // model before optimizer: see OptimizerState
  if (optimizer) parts.push_back(optimizer.get());
  if (rng) parts.push_back(rng.get());
  return parts;
}

StateParts training_state_parts(CheckpointMeta& meta, GPT& model, torch::optim::AdamW* optimizer,
                                bool allow_new_normalizer) {
  StateParts parts;
  parts.progress = std::make_unique<TrainingProgress>(meta);
  parts.model = std::make_unique<ModelState>(model, allow_new_normalizer);
  if (optimizer) {
    parts.optimizer = std::make_unique<OptimizerState>(*optimizer, *parts.model);
    parts.rng = std::make_unique<RngState>(model_device(model));
  }
  return parts;
}

}  // namespace ssmax
