#pragma once
// Where a step's time goes, operator by operator: LibTorch's (Kineto) profiler around a stretch of work, a Chrome
// trace file (chrome://tracing, Perfetto) and a table of operators by self time, like torch.profiler's
// key_averages(). Used by `bench --profile`. Torch-free header.
#include <memory>
#include <string>
#include <vector>

namespace ssmax {

struct OperatorTime {
  std::string name;
  double self_ms = 0;   // time inside the operator itself, not in operators it called
  double total_ms = 0;  // including the operators it called
  int64_t calls = 0;
};

class OperatorProfile {
 public:
  OperatorProfile();  // starts recording CPU operators (and CUDA kernels where CUDA is available)
  ~OperatorProfile();
  // Stops recording, writes the Chrome trace to `trace_path` (if not empty) and returns the operators by
  // descending self time.
  std::vector<OperatorTime> finish(const std::string& trace_path);

 private:
  bool running_ = false;
};

// The first `limit` rows as an aligned text table, times divided by `steps` (per-step figures), with each
// operator's share of the total self time.
std::string operator_table(const std::vector<OperatorTime>& operators, int steps, size_t limit);

}  // namespace ssmax
