// The TensorBoard event file as `train --resume` checks it before appending (run/tensorboard.h: repair_event_file):
// torn, overwritten or damaged files are what it is for.
// Property: it returns or throws a clear error, and the file it leaves is whole (a second check changes nothing).
#include <filesystem>

#include "fuzz_common.h"
#include "run/run_paths.h"
#include "run/tensorboard.h"

using namespace ssmax;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const RunPaths run(fuzz::scratch_dir());
  std::error_code error;
  std::filesystem::remove(run.damaged_events(1), error);  // or every input would add one more aside
  fuzz::write_scratch(std::filesystem::path(run.events()).filename(), fuzz::as_string(data, size));
  fuzz::expect_result_or_clear_error([&] {
    repair_event_file(run);
    if (const std::string again = repair_event_file(run); !again.empty())
      fuzz::finding("the file left behind is not whole", again);
  });
  return 0;
}
