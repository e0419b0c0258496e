#!/usr/bin/env bash
# The GPU check's plumbing on the CPU (scripts/gpu_check.sh): `pack --no-build --no-study` gathers the bundle from this
# build, `run --dry-run` runs every step at a tiny size (the CUDA tests skip themselves) and passes; with a step made
# to fail, `run` still runs the others, exits non-zero and names the failed step. `study --dry-run` runs the GPU
# study's file (studies/manuals-h100.json) scaled down, end to end, and leaves its report where $OUT says.
# Usage: bash tests/cli/gpu_check_dry_run.sh BINARY SCRATCH_DIR PYTHON
set -u
source "$(dirname "$0")/lib/common.sh"
cli_test_init --python "$@"

export SSMAX_TORCH_ENV
SSMAX_TORCH_ENV=$(cd "$(dirname "$PY")/.." && pwd)
export SSMAX_BUILD_DIR
SSMAX_BUILD_DIR=$(dirname "$BIN")
export SSMAX_GPU_CHECK_WORK="$S/work"
export SSMAX_CACHE_DIR="$S/machine"
unset OUT
bundle="$S/bundle"

run_expect 0 bash "$ROOT/scripts/gpu_check.sh" pack "$bundle" --no-build --no-study
check "the bundle has the binaries, the libraries and the prepared data" \
  test -x "$bundle/bin/ssmax-gpt" -a -x "$bundle/bin/ssmax_tests" -a -f "$bundle/bin/libssmax_spm.so" \
  -a -d "$bundle/lib" -a -f "$bundle/data/kjv.txt" -a -d "$bundle/data/cache"

run_expect 0 bash "$ROOT/scripts/gpu_check.sh" run "$bundle" --dry-run
log="$bundle/gpu_check.log"
check "the log ends with the pass line" bash -c "tail -1 '$log' | grep -q '^== gpu_check passed in'" || show "$log"
check "step 1 ran the CUDA tests (skipped on this CPU) and they passed" grep -q "PASSED" "$log"
check "step 4 compared torchrun's losses with the plain run's" \
  grep -qE "torchrun 1 rank vs plain: [0-9]+ losses, largest relative difference .* \(tolerance 1e-5\)" "$log"
check "no step failed" bash -c "! grep -q '!! FAILED' '$log'"

# The study, scaled down: every task of the study file runs and the report comes back under $OUT/study.
OUT="$S/out" run_expect 0 bash "$ROOT/scripts/gpu_check.sh" study "$bundle" --dry-run
study_log="$S/out/study/gpu_study.log"
check "the study passed" bash -c "tail -1 '$study_log' | grep -q '^== gpu_check study passed in'" || show "$study_log"
check "every task of the study ran (3 variants × 2 seeds: pretrain, 2 finetunes, evaluations)" \
  grep -qE "study manuals-h100: ([0-9]+)/\1 tasks done \(100 % of the work\)" "$study_log"
check "the report and its figures came back" test -s "$S/out/study/report.md" -a -s "$S/out/study/report.html" \
  -a -d "$S/out/study/figures"
check "the report compares the three normalizers" grep -q "ssmax_bias" "$S/out/study/report.md"

# A step that fails: the run goes on to the end, exits non-zero, and its last line names the step.
printf '#!/bin/sh\necho "a failing test binary"\nexit 1\n' >"$bundle/bin/ssmax_tests"
run_expect 1 bash "$ROOT/scripts/gpu_check.sh" run "$bundle" --dry-run
check "a failed step is named in the last line" \
  bash -c "tail -1 '$log' | grep -q '^== gpu_check FAILED in .*: 1. CUDA tests$'" || show "$log"
check "the steps after the failed one still ran" grep -q "torchrun 1 rank vs plain" "$log"

cli_test_finish
