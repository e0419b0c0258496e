#!/usr/bin/env bash
# Training speed of ssmax-gpt against the independent eager PyTorch reference (../shared/reference/ref_gpt.py), side
# by side on this machine, interleaved rounds, medians per normalizer, peak memory of each; see
# scripts/bench_vs_reference.py for what is measured.
# Usage: bash scripts/bench_vs_reference.sh [kjv-tiny | gpt2-124m | CONFIG] [--rounds N] [--steps N] [--compile]
#        [--markdown]        (defaults: kjv-tiny, 3 rounds of 10 steps)
# Needs a build (build/ssmax-gpt) and the torch environment of scripts/setup.sh; $SSMAX_REFERENCE names another
# copy of ref_gpt.py.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/build/ssmax-gpt
source "$ROOT/scripts/lib/env.sh"
PY=$SSMAX_TORCH_PYTHON
REF=${SSMAX_REFERENCE:-$ROOT/../shared/reference/ref_gpt.py}
[ -x "$BIN" ] || { echo "bench_vs_reference: build first (bash scripts/test.sh builds build/)" >&2; exit 2; }
[ -x "$PY" ] || { echo "bench_vs_reference: $PY missing: run scripts/setup.sh" >&2; exit 2; }
[ -f "$REF" ] || { echo "bench_vs_reference: no reference at $REF (set SSMAX_REFERENCE)" >&2; exit 2; }
exec "$PY" "$ROOT/scripts/bench_vs_reference.py" --binary "$BIN" --reference "$REF" "$@"
