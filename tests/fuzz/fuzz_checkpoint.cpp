// A run's checkpoint catalog (run/checkpoint_catalog.h): the manifests beside the archives, read to list, verify
// and resume. Input: the manifest of checkpoints/step_00000010.pt, up to a line "@@", then the manifest of
// step_00000020.pt. The archives are fixed bytes; the manifests are what a crash or a bit flip can damage.
// Property: whatever the manifests say, the catalog resumes from an archive whose bytes and hash verify, or says
// there is none; it never lists a step that is not its file's.
#include <filesystem>

#include "fuzz_common.h"
#include "run/checkpoint_catalog.h"

using namespace ssmax;
namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input = fuzz::as_string(data, size);
  const size_t cut = input.find("\n@@\n");
  const std::string first = input.substr(0, cut);
  const std::string second = cut == std::string::npos ? "" : input.substr(cut + 4);
  const std::string run = fuzz::scratch_dir() + "/run";
  fs::create_directories(run + "/checkpoints");
  fuzz::write_scratch("run/config.json", "{}");
  fuzz::write_scratch("run/checkpoints/step_00000010.pt", "archive of step 10");
  fuzz::write_scratch("run/checkpoints/step_00000020.pt", "archive of step 20, a little longer");
  fuzz::write_scratch("run/checkpoints/step_00000010.json", first);
  fuzz::write_scratch("run/checkpoints/step_00000020.json", second);
  for (const auto& entry : list_checkpoints(run))
    if (entry.path != checkpoint_path(run, entry.step)) fuzz::finding("listed under another step", entry.path);
  fuzz::expect_result_or_clear_error([&] {
    const ResolvedCheckpoint resolved = resolve_checkpoint(run);
    verify_checkpoint(resolved.path);  // the one chosen must verify on its own
  });
  fuzz::expect_result_or_clear_error([&] { verify_checkpoint(run + "/checkpoints/step_00000010.pt"); });
  return 0;
}
