// metrics.jsonl as compare, study and the trainer's resume read it (run/metrics.h).
// Property: every record read back writes out as JSON that reads back to the same JSON.
#include "fuzz_common.h"
#include "run/metrics.h"

using namespace ssmax;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::write_scratch("metrics.jsonl", fuzz::as_string(data, size));
  fuzz::expect_result_or_clear_error([&] {
    for (const auto& record : read_metrics(path).records) {
      const nlohmann::json j = record.to_json();
      if (MetricsRecord::from_json(j).to_json() != j) fuzz::finding("record does not survive its own JSON", j.dump());
      j.dump();  // throws on invalid UTF-8 in the event text: that would be a crash of compare
    }
  });
  return 0;
}
