// The study file reader (study/study_spec.h). Input: leading lines "@set KEY=VALUE" (the command line's --set),
// then the study file's text. Its "config" key names a base config; the seed corpus names the one in
// tests/fuzz/corpus/ (run from the repository root, as scripts/fuzz.sh does).
#include "fuzz_common.h"
#include "study/study_spec.h"

using namespace ssmax;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text = fuzz::as_string(data, size);
  const std::vector<std::string> overrides = fuzz::take_overrides(text);
  const std::string path = fuzz::write_scratch("study.json", text);
  fuzz::expect_result_or_clear_error([&] {
    const StudySpec spec = load_study(path, overrides);
    expand_runs(spec);
  });
  return 0;
}
