#!/usr/bin/env bash
# Builds the libFuzzer harnesses (tests/fuzz/) with clang into build/fuzz and runs each for a while.
#   scripts/fuzz.sh [SECONDS] [HARNESS ...]     default: 60 s each, every harness (config study shard documents
#                                               metrics events safetensors checkpoint tokenizer)
#   scripts/fuzz.sh --smoke                     what the test suite runs: the regression inputs, then 5 s each
# Each harness starts from its committed seeds (tests/fuzz/corpus/NAME) and keeps what it discovers in
# build/fuzz/corpus/NAME, so a second run goes on from there ($SSMAX_FUZZ_BUILD names another build directory). An
# input that crashes, leaks or trips a sanitizer is written to build/fuzz/findings/ and the script exits 1 naming
# it; add it to tests/fuzz/regressions/NAME/ with the fix, and every later run (the test suite's too) replays it.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60
smoke=0
if [[ ${1:-} == --smoke ]]; then
  smoke=1
  seconds=5
  shift
elif [[ ${1:-} =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
elif [[ -n ${1:-} && ! -f tests/fuzz/fuzz_${1}.cpp ]]; then
  echo "usage: scripts/fuzz.sh [SECONDS] [HARNESS ...] | --smoke" >&2
  exit 2
fi
harnesses=("$@")
((${#harnesses[@]})) || harnesses=(config study shard documents metrics events safetensors checkpoint tokenizer)
for h in "${harnesses[@]}"; do
  [[ -f tests/fuzz/fuzz_$h.cpp ]] || { echo "fuzz: no harness '$h' (tests/fuzz/fuzz_$h.cpp)" >&2; exit 2; }
done

compiler=$(command -v clang++-14 || command -v clang++ || true)
if [[ -z $compiler ]] || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  echo "fuzz: clang and libFuzzer are missing: install clang-14 and libclang-rt-14-dev (scripts/test.sh does)" >&2
  exit 1
fi
build=${SSMAX_FUZZ_BUILD:-build/fuzz}  # the test suite passes its own build directory
mkdir -p "$build"
build=$(cd "$build" && pwd)
cmake -S tests/fuzz -B "$build" -DCMAKE_CXX_COMPILER="$compiler" >/dev/null
cmake --build "$build" -j "${SSMAX_BUILD_JOBS:-$(nproc)}" --target $(printf 'fuzz_%s ' "${harnesses[@]}")

# The harnesses write their scratch files under TMPDIR; leaks are findings (ASan's LeakSanitizer).
export TMPDIR=$build/tmp ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1
rm -rf "$TMPDIR"
mkdir -p "$TMPDIR" "$build/findings"
failed=()
seed=""
((smoke)) && seed=-seed=1
for h in "${harnesses[@]}"; do
  log=$build/fuzz_$h.log
  regressions=(tests/fuzz/regressions/"$h"/*)
  if [[ -e ${regressions[0]} ]]; then
    if ! "$build/fuzz_$h" "${regressions[@]}" >"$log" 2>&1; then
      echo "fuzz: $h: a regression input fails again (log: $log)" >&2
      tail -n 20 "$log" >&2
      failed+=("$h")
      continue
    fi
  fi
  mkdir -p "$build/corpus/$h"
  # -rss_limit_mb: the readers must refuse a length field that promises gigabytes, not allocate it.
  # The smoke run draws the same inputs each time (-seed=1), so the test suite does not fail by chance.
  if "$build/fuzz_$h" "$build/corpus/$h" "tests/fuzz/corpus/$h" -max_total_time="$seconds" -rss_limit_mb=2048 $seed \
      -timeout=20 -artifact_prefix="$build/findings/$h-" -print_final_stats=1 >"$log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    cover=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 || true)
    echo "fuzz: $h: ${seconds} s, $runs inputs, ${cover:-cov: ?} edges, no findings"
  else
    echo "fuzz: $h: FINDING (log: $log; input: $(ls -t "$build"/findings/"$h"-* 2>/dev/null | head -n 1))" >&2
    grep -E 'FINDING|ERROR: |SUMMARY' "$log" | head -n 5 >&2 || true
    failed+=("$h")
  fi
done
rm -rf "$TMPDIR"
if ((${#failed[@]})); then
  echo "fuzz: findings in: ${failed[*]}" >&2
  exit 1
fi
((smoke)) || echo "fuzz: all ${#harnesses[@]} harnesses clean (${seconds} s each)"
