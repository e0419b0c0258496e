#include "train/checkpoint.h"

#include <filesystem>

#include "util/errors.h"
#include "util/files.h"
#include "util/text.h"

namespace ssmax {
namespace fs = std::filesystem;

namespace {

// Tensors are mapped onto `device` as they load: a checkpoint written on CUDA opens on a CPU-only machine.
torch::serialize::InputArchive open_archive(const std::string& path, const torch::Device& device) {
  if (!fs::is_regular_file(path)) throw RuntimeFailure(path + ": checkpoint file does not exist");
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path, device);
  } catch (const c10::Error&) {
    throw RuntimeFailure(path + ": not a readable checkpoint (truncated, corrupted or not a torch archive)");
  }
  return archive;
}

}  // namespace

void write_checkpoint_file(const std::string& path, const std::vector<CheckpointPart*>& parts,
                           const CheckpointMeta& meta) {
  torch::serialize::OutputArchive archive;
  for (const CheckpointPart* part : parts) part->save(archive);
  fs::create_directories(fs::path(path).parent_path());
  // Torch's own file writer throws from its destructor when a write fails (a full disk, a file-size limit), which
  // terminates the process. Through this sink a failed write is only noted and the rest of the archive discarded;
  // the error (DurableFile's: the file and the system's reason) is raised once torch is done.
  DurableFile file(path);
  std::string failure;
  const auto sink = [&](const void* data, size_t n) -> size_t {
    if (!failure.empty() || n == 0) return n;
    try {
      file.write(data, n);
    } catch (const RuntimeFailure& e) {
      failure = e.what();
    }
    return n;
  };
  try {
    archive.save_to(sink);
  } catch (const c10::Error& e) {
    throw RuntimeFailure(path + ": cannot write checkpoint: " + first_line(e.what_without_backtrace()));
  }
  if (!failure.empty()) throw RuntimeFailure(failure);
  file.commit();
  record_checkpoint(path, meta.step, meta.step_val_loss);
}

void read_checkpoint_file(const std::string& path, const std::vector<CheckpointPart*>& parts,
                          const torch::Device& device) {
  auto archive = open_archive(path, device);  // AdamW's moments land on the parameters' device too
  try {
    for (CheckpointPart* part : parts) part->load(archive, path);
  } catch (const c10::Error& e) {
    throw RuntimeFailure(path + ": cannot restore from checkpoint (" +
                         std::string(e.what_without_backtrace()).substr(0, 200) + ")");
  }
}

CheckpointMeta read_checkpoint_meta(const std::string& path) {
  auto archive = open_archive(path, torch::kCPU);
  return TrainingProgress::read(archive, path);
}

CheckpointInfo open_checkpoint(const std::string& target) {
  CheckpointInfo info;
  ResolvedCheckpoint resolved = resolve_checkpoint(target);
  info.path = std::move(resolved.path);
  info.run_dir = std::move(resolved.run_dir);
  info.meta = read_checkpoint_meta(info.path);
  info.config = config_from_json(info.meta.config, info.path);
  return info;
}

void refuse_without_text(const CheckpointMeta& meta, const std::string& checkpoint, const std::string& command) {
  const auto* task = meta.config.contains("data") ? &meta.config["data"] : nullptr;
  if (task && task->is_object() && task->value("task", std::string("text")) == "mqar")
    throw UsageError(command + ": " + checkpoint +
                     " was trained on the recall task (data.task = \"mqar\"), which has no text and no tokenizer; "
                     "evaluate it with `ssmax-gpt recall " +
                     checkpoint + "`");
}

void save_checkpoint(const std::string& path, GPT& model, torch::optim::AdamW& optimizer, const CheckpointMeta& meta) {
  CheckpointMeta copy = meta;
  write_checkpoint_file(path, training_state_parts(copy, model, &optimizer).all(), meta);
}

CheckpointMeta load_checkpoint(const std::string& path, GPT& model, torch::optim::AdamW* optimizer,
                               bool new_normalizer_parameters) {
  CheckpointMeta meta;
  read_checkpoint_file(path, training_state_parts(meta, model, optimizer, new_normalizer_parameters).all(),
                       model_device(model));
  return meta;
}

}  // namespace ssmax
