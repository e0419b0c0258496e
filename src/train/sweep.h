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

// The command's arguments as given: `sweep CONFIG [--normalizers a,b] [--seeds 1,2] [--vary KEY=V1,V2 …] [--set …]`.
struct SweepArgs {
  std::string config_path;
  std::vector<std::string> normalizers, seeds;  // empty: the config's
  std::vector<std::string> vary;                // KEY=V1,V2,…
  std::vector<std::string> overrides;           // --set KEY=VALUE
};

// The one check of the arguments, before any work, and the plan they make: each axis's values distinct, no key swept
// twice or both swept and --set, out_dir and name left to the sweep. UsageError naming the option.
SweepPlan plan_sweep(const SweepArgs& args);

struct SweepResult {
  std::string root;
  int runs = 0, trained = 0, skipped = 0;
  std::string interrupted_run;  // a signal stopped this run (it wrote its checkpoint); empty when all finished
};

// Run names: "<leaf>=<value>" joined by "_", e.g. "normalizer=ssmax_s_init=0.2_seed=1".
// Every combination is validated before anything trains, so a typo fails at once.
SweepResult run_sweep(const SweepPlan& plan);

}  // namespace ssmax
