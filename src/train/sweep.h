#pragma once
// `sweep`: the cartesian product of a few config axes (normalizer, any --vary key, seed), each combination
// trained as its own run directory <out_dir>/<name>, one after another. Torch-free header.
#include <string>
#include <vector>

namespace ssmax {

struct SweepAxis {
  std::string key;                  // dotted config key
  std::vector<std::string> values;  // as typed on the command line; typed by the schema like --set
};

struct SweepPlan {
  std::string config_path;
  std::vector<std::string> overrides;  // --set, applied to every run before the axes
  std::vector<SweepAxis> axes;
};

struct SweepResult {
  std::string root;
  int runs = 0, trained = 0, skipped = 0;
  std::string interrupted_run;  // a signal stopped this run (it wrote its checkpoint); empty when all finished
};

// Run names: "<leaf>=<value>" joined by "_", e.g. "normalizer=ssmax_s_init=0.2_seed=1".
// Every combination is validated before anything trains, so a typo fails at once.
SweepResult run_sweep(const SweepPlan& plan);

}  // namespace ssmax
