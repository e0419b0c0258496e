#!/usr/bin/env bash
# Configures and builds ssmax-gpt into build/ (Release).
#   scripts/build.sh                 everything, tests included
#   scripts/build.sh ssmax-gpt       only the named targets
# SSMAX_BUILD_JOBS sets the parallelism (default: all cores; each torch file needs ~1 GB of memory).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${SSMAX_BUILD_JOBS:-$(nproc)}
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
if (($#)); then
  targets=()
  for t in "$@"; do targets+=(--target "$t"); done
  cmake --build build -j "$jobs" "${targets[@]}"
else
  cmake --build build -j "$jobs"
fi
