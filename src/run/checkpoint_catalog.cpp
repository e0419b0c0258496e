#include "run/checkpoint_catalog.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "run/run_paths.h"
#include "util/errors.h"
#include "util/files.h"
#include "util/hash.h"
#include "util/text.h"

namespace ssmax {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string manifest_path(const std::string& checkpoint) {
  return fs::path(checkpoint).replace_extension(".json").string();
}

}  // namespace

std::string checkpoint_path(const std::string& run_dir, int64_t step) { return RunPaths(run_dir).checkpoint(step); }

void record_checkpoint(const std::string& path, int64_t step, double val_loss) {
  Hasher64 hasher;
  const uint64_t bytes = hash_file_into(hasher, path);
  const json manifest = {{"step", step},
                         {"bytes", bytes},
                         {"hash", hasher.hex()},
                         {"val_loss", std::isfinite(val_loss) ? json(val_loss) : json(nullptr)}};
  write_file_atomic(manifest_path(path), manifest.dump() + "\n");
  write_file_atomic((fs::path(path).parent_path() / RunPaths::kLatest).string(),
                    fs::path(path).filename().string() + "\n");
}

std::vector<CheckpointEntry> list_checkpoints(const std::string& run_dir) {
  std::vector<CheckpointEntry> entries;
  const fs::path dir = RunPaths(run_dir).checkpoints();
  if (!fs::is_directory(dir)) return entries;
  for (const auto& file : fs::directory_iterator(dir)) {
    const auto name = file.path().filename().string();
    if (!file.is_regular_file() || RunPaths::step_of(name, ".pt") < 0) continue;
    const std::string manifest_file = manifest_path(file.path().string());
    if (!fs::exists(manifest_file)) continue;  // a write that did not finish
    const json manifest = json::parse(read_file(manifest_file), nullptr, false);
    // A manifest whose step is not the one in the file name is damaged: pruning and resuming go by this step.
    const auto step = manifest.is_object() ? manifest.find("step") : manifest.end();
    if (step == manifest.end() || !step->is_number_integer() ||
        file.path().filename().string() != fs::path(checkpoint_path("", step->get<int64_t>())).filename().string()) {
      spdlog::warn("ignoring {}: its manifest {} is damaged (no step matching the file name)", file.path().string(),
                   manifest_file);
      continue;
    }
    CheckpointEntry entry;
    entry.path = file.path().string();
    entry.step = step->get<int64_t>();
    const auto val_loss = manifest.find("val_loss");
    if (val_loss != manifest.end() && val_loss->is_number()) entry.val_loss = val_loss->get<double>();
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
  const json manifest = json::parse(read_file(manifest_file), nullptr, false);
  if (!manifest.is_object() || !manifest.contains("bytes") || !manifest["bytes"].is_number_unsigned() ||
      !manifest.contains("hash") || !manifest["hash"].is_string())
    throw RuntimeFailure(manifest_file + ": checkpoint manifest is not valid JSON with bytes and hash");
  const auto expected_bytes = manifest["bytes"].get<uint64_t>();
  const auto expected_hash = manifest["hash"].get<std::string>();
  Hasher64 hasher;
  const uint64_t bytes = hash_file_into(hasher, path);
  if (bytes != expected_bytes || hasher.hex() != expected_hash)
    throw RuntimeFailure(path + ": checkpoint is corrupted or truncated (" + std::to_string(bytes) + " bytes, hash " +
                         hasher.hex() + "; manifest says " + std::to_string(expected_bytes) + " bytes, hash " +
                         quoted_bytes(expected_hash) + ")");
}

namespace {

// Checkpoint files whose manifest is still there but which are gone (deleted or moved by hand), newer than `step`:
// resuming from an older one must say so, as for a damaged file.
void warn_of_missing_checkpoints(const std::string& run_dir, int64_t step) {
  const fs::path dir = RunPaths(run_dir).checkpoints();
  if (!fs::is_directory(dir)) return;
  std::vector<std::string> missing;
  for (const auto& file : fs::directory_iterator(dir)) {
    const int64_t file_step = RunPaths::step_of(file.path().filename().string(), ".json");
    const fs::path checkpoint = fs::path(file.path()).replace_extension(".pt");
    if (file_step > step && !fs::exists(checkpoint)) missing.push_back(checkpoint.string());
  }
  std::sort(missing.begin(), missing.end());
  for (const auto& path : missing)
    spdlog::warn("skipping missing checkpoint: {} is gone (its manifest is still there: deleted or moved?)", path);
}

}  // namespace

std::string find_resume_checkpoint(const std::string& run_dir) {
  auto entries = list_checkpoints(run_dir);
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    try {
      verify_checkpoint(it->path);
      warn_of_missing_checkpoints(run_dir, it->step);
      return it->path;
    } catch (const RuntimeFailure& e) {
      spdlog::warn("skipping bad checkpoint: {}", e.what());
    }
  }
  warn_of_missing_checkpoints(run_dir, -1);
  throw RuntimeFailure(run_dir +
                       ": no valid checkpoint to resume from (checkpoints/ is empty or every file is damaged)");
}

ResolvedCheckpoint resolve_checkpoint(const std::string& target) {
  if (fs::is_regular_file(target)) {
    verify_checkpoint(target);
    fs::path dir = fs::path(target).parent_path();
    if (dir.filename() == RunPaths::kCheckpoints) dir = dir.parent_path();
    return {target, dir.empty() ? std::string(".") : dir.string()};
  }
  if (fs::is_directory(target)) {
    if (!fs::exists(RunPaths(target).config()))
      throw UsageError(target + ": not a run directory (no config.json) and not a checkpoint file");
    return {find_resume_checkpoint(target), target};
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
  // Leftovers of interrupted writes: temporary files, archives whose manifest never got written.
  const std::string newest = checkpoint_path(run_dir, entries.empty() ? 0 : entries.back().step);
  for (const auto& file : fs::directory_iterator(RunPaths(run_dir).checkpoints())) {
    const auto p = file.path();
    if (is_temporary_file_name(p.filename().string())) fs::remove(p);
    else if (p.extension() == ".pt" && !fs::exists(manifest_path(p.string())) && p.string() < newest) fs::remove(p);
  }
  for (const auto& path : doomed) {
    fs::remove(manifest_path(path));  // manifest first: a half-deleted pair is then simply ignored
    fs::remove(path);
  }
}

}  // namespace ssmax
