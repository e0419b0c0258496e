#pragma once
// Which library runs the CPU's float32 matrix products (kernels/gemm.h): OpenBLAS or ATen/MKL, whichever is faster on
// this machine for this model's own products — timed, not assumed, because the answer flips between CPUs (OpenBLAS
// 0.3.21 ran 20 % faster than MKL on an AMD EPYC, several times slower on an Intel Xeon whose AVX-512 it did not
// know and served with generic SSE3 kernels).
//
// The timing runs each distinct product of one training step (a layer's forward and both backward products of
// every linear, one chunk of the fused head + loss) through both libraries on the current intra-op threads: one
// warm-up pass each, then the best of up to 3 passes (within a budget of a few seconds) for every library not already
// twice as slow, each product weighted by how often a step runs it. The answer is kept in the machine cache
// (util/machine_cache.h) under a key naming the CPU, threads, LibTorch, both libraries, the settings that limit their
// instructions and the shapes, so every later run on this machine makes the same choice and computes the same
// numbers — once the choice is settled: one timed while other processes competed for the cores is timed again by the
// next runs (util/machine_load.h), each library keeping its best figure, and the choice moves only to a library that
// is clearly (10 %) faster. A resumed run keeps the library its checkpoint was written with. Under torchrun rank 0
// chooses for every rank. OPENBLAS_CORETYPE is respected, never set.
#include <optional>
#include <string>

#include "config/config.h"
#include "kernels/gemm.h"
#include "util/machine_load.h"

namespace ssmax {

struct BlasChoice {
  CpuBlas blas = CpuBlas::kAten;
  double openblas_gflops = 0, aten_gflops = 0;  // on this model's products; 0 where not timed
  std::string how;  // "measured", "cached", or why nothing was timed ("cpu_blas = aten", "OpenBLAS not loaded: …")
  MeasurementConditions conditions;  // of the timing behind the figures
};

// Chooses for a model trained `rows` tokens per micro-batch (batch_size × block_size) with `vocab` classes, applies
// the choice (use_cpu_blas) and logs it with both figures. `setting` is the config's cpu_blas: "auto" measures (or
// reads the cache) unless `resumed_with` names the library the run's checkpoint was made with; "openblas" / "aten"
// force one. SSMAX_UNFUSED=gemm forces ATen. Nothing to do off the CPU. `quiet` logs the choice at debug level (the
// evaluation commands, whose stderr a failure keeps to one line).
BlasChoice choose_cpu_blas(const std::string& setting, const ModelConfig& model, int64_t vocab, int64_t rows,
                           std::optional<CpuBlas> resumed_with = std::nullopt, bool quiet = false);

// "openblas" | "aten", as the checkpoint (CheckpointMeta::cpu_blas_used) and the machine cache spell them; nothing
// for another name (an empty one included).
const char* cpu_blas_name(CpuBlas blas);
std::optional<CpuBlas> cpu_blas_from_name(const std::string& name);

// The log line's text: "ATen/MKL 2024.2: 141 GFLOP/s on this model's products (OpenBLAS 0.3.21, Prescott kernels:
// 38; measured)".
std::string describe_blas_choice(const BlasChoice& choice);

}  // namespace ssmax
