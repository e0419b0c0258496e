#pragma once
// The metrics record: one JSON object per line of <run>/metrics.jsonl, written at every logged step
// and every evaluation. The single definition of its fields, for the trainer and every reader.
#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ssmax {

class TensorBoardWriter;

struct MetricsRecord {
  int64_t step = 0;                  // optimizer steps done
  int64_t tokens = 0;                // training tokens seen
  std::optional<double> train_loss;  // mean over the steps since the previous train record
  std::optional<double> val_loss;    // present on evaluation records
  double lr = 0;
  std::optional<double> grad_norm;  // before clipping
  std::optional<double> tokens_per_s;
  std::optional<double> ms_per_step;
  // Model-FLOPs utilisation of those steps: model FLOPs per token × tokens/s ÷ the peak of every process's device
  // (train/peak_flops.h); absent when the peak is unknown.
  std::optional<double> mfu;
  double elapsed_s = 0;  // training wall time (excludes evaluation and checkpoints)
  // The normalizer's learned parameters by name (kNormalizerParameters: s, b), each [layer][head]; empty for
  // softmax runs. In JSON each is a field of its own name.
  using PerLayer = std::vector<std::vector<double>>;
  std::map<std::string, PerLayer> normalizer;
  std::string event;  // e.g. "normalizer switched to ssmax"; usually empty
  // Data-parallel runs (torchrun) only, written when world_size > 1: the processes (tokens and tokens_per_s are
  // global), and the mean time per step this rank waited for the gradient all-reduce after its backward pass.
  int world_size = 1;
  std::optional<double> sync_ms;

  // `name`'s values, empty when the record has none.
  const PerLayer& parameter(const std::string& name) const;

  nlohmann::json to_json() const;
  static MetricsRecord from_json(const nlohmann::json& j);
};

// Appends records, one flushed line each, so a reader sees whole lines even while a run goes on; with a
// `tensorboard` path, also each record's scalars as a TensorBoard event there (run/tensorboard.h). A TensorBoard
// file that cannot be written is one warning, and metrics.jsonl goes on.
class MetricsWriter {
 public:
  explicit MetricsWriter(const std::string& path, const std::string& tensorboard = "");
  ~MetricsWriter();
  void write(const MetricsRecord& record);

 private:
  std::string path_;
  std::ofstream out_;
  std::unique_ptr<TensorBoardWriter> tensorboard_;
};

struct MetricsFile {
  std::vector<MetricsRecord> records;
  bool last_line_cut = false;  // the final line was cut off mid-write (run in progress or killed)
};

// Reads a metrics.jsonl; tolerates a cut-off final line. Throws RuntimeFailure for other bad lines.
MetricsFile read_metrics(const std::string& path);

// Before a resumed run appends to a metrics.jsonl: a last line torn off mid-write (no newline at its end) is cut off,
// or the first new record would be glued to it into a line no reader takes, in the middle of the file. Returns the
// one line of warning that says so, empty when the file is absent, empty or ends in a newline. Throws
// RuntimeFailure naming the file when it cannot be read or cut.
std::string repair_metrics_file(const std::string& path);

}  // namespace ssmax
