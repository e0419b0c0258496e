#pragma once
// What a study's directory holds, per run: the training curves and final losses (metrics.jsonl), the learned SSMax
// parameters, and the evaluations' JSON files. Read from disk only, so a report can be rebuilt at any time, from a
// study that is finished or cut short. Torch-free.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "report/run_data.h"
#include "study/study_spec.h"

namespace ssmax {

struct NeedleCells {
  std::vector<int64_t> lengths;
  std::vector<double> depths;
  int trials = 0;
  std::vector<std::vector<double>> exact, digits;  // [depth][length], fractions over the trials
  int64_t block_size = 0;                          // the model's training length
};

struct AttentionResult {
  double top_mass = 0;                    // the head with the most attention on the needle (mean over trials)
  double mean_mass = 0;                   // over every layer and head
  double uniform = 0;                     // what attention spread evenly over the prompt would put on the needle
  std::vector<std::vector<double>> mass;  // [layer][head]
};

struct RecallPoint {
  double accuracy = 0, loss = 0;
  double best_head_mass = 0;  // the head with the most attention on the right pair
  int64_t block_size = 0;     // the model's training length
};

struct RunResults {
  bool trained = false;  // training reached max_steps
  std::optional<double> final_val_loss, final_train_loss;
  Curve val_curve, train_curve;                               // by step
  std::map<std::string, MetricsRecord::PerLayer> normalizer;  // the last record's learned parameters (by name)
  // scaling (-1: as trained; StudySpec::scalings) → RoPE θ scale → length → loss
  std::map<int, std::map<double, std::map<int64_t, double>>> long_context;
  std::optional<NeedleCells> needle;
  std::map<int64_t, AttentionResult> attention;          // by prompt length
  std::map<int, std::map<int64_t, RecallPoint>> recall;  // scaling (-1: as trained; RecallSpec::scalings) → length
};

// One entry per run of expand_runs(spec), in that order. Missing pieces stay empty; files that exist but cannot be
// read add a line to `warnings`.
std::vector<RunResults> collect_results(const StudySpec& spec, const std::vector<StudyRun>& runs,
                                        std::vector<std::string>& warnings);

}  // namespace ssmax
