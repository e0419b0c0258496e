// The config reader: a JSON file (comments allowed) checked against the schema, then the command line's --set
// overrides. Input: any number of leading lines "@set KEY=VALUE" (the overrides), then the file's text.
// Property: a config that loads turns back into JSON that loads to the same config.
#include "config/config.h"
#include "fuzz_common.h"

using namespace ssmax;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text = fuzz::as_string(data, size);
  const std::vector<std::string> overrides = fuzz::take_overrides(text);
  const std::string path = fuzz::write_scratch("config.json", text);
  fuzz::expect_result_or_clear_error([&] {
    const Config config = load_config(path, overrides);
    const nlohmann::json resolved = config_to_json(config);
    const Config again = config_from_json(resolved, "the resolved config");
    if (config_to_json(again) != resolved) fuzz::finding("config does not survive its own JSON", resolved.dump());
  });
  return 0;
}
