#pragma once
// `ssmax-gpt compare`: groups runs into variants by config difference and writes a report directory:
// loss.png/.svg (curves per variant), s.png/.svg and b.png/.svg (learned SSMax parameters, when any run
// has them), curves.csv (the aligned curves) and summary.json (the table's numbers and the pairwise
// Welch t-tests). Torch-free.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ssmax {

struct CompareOptions {
  std::vector<std::string> run_dirs;
  std::string out_dir;              // REPORT_DIR; created if missing; only files in it are written
  std::string metric = "val_loss";  // val_loss | train_loss
  std::string x_axis = "step";      // step | tokens | time
  double smooth = 0;                // EMA weight of the past in [0, 1), curves only (see ema_smooth)
  bool log_x = false;
  bool force = false;  // compare runs trained on different data
};

struct CompareReport {
  std::string text;                   // the tables, as printed
  nlohmann::json summary;             // as written to summary.json
  std::vector<std::string> warnings;  // also logged as they arise
  std::vector<std::string> files;     // paths written
};

// Throws UsageError for bad options, --out naming an existing file, no usable run among run_dirs, or runs
// trained on different data without `force`. Unusable run directories and runs without the metric only
// produce warnings.
CompareReport compare_runs(const CompareOptions& options);

}  // namespace ssmax
