#!/usr/bin/env bash
# Training speed of ssmax-gpt against the independent eager PyTorch reference (../shared/reference/ref_gpt.py,
# nanoGPT-style, same config keys), side by side on this machine: for each round and each normalizer, `bench` and
# the reference each time STEPS training steps (forward, backward, clip, AdamW) on random tokens of the config's
# shape with the same threads; the rounds interleave the two so drift in machine speed hits both alike.
# Prints each measurement, then per normalizer the median tokens/s of each and the median of the per-round ratios.
# Usage: bash scripts/bench_vs_reference.sh [CONFIG] [ROUNDS] [STEPS] [--compile]
#        (defaults: configs/kjv-tiny-softmax.json 3 10; --compile also times the reference under torch.compile)
# Needs a build (build/ssmax-gpt) and the torch environment of scripts/setup.sh; $SSMAX_REFERENCE names another
# copy of ref_gpt.py.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CONFIG=${1:-$ROOT/configs/kjv-tiny-softmax.json}
ROUNDS=${2:-3}
STEPS=${3:-10}
COMPILE=${4:-}
BIN=$ROOT/build/ssmax-gpt
PY=${SSMAX_TORCH_ENV:-/opt/ssmax-gpt/torch-2.11.0}/bin/python3
REF=${SSMAX_REFERENCE:-$ROOT/../shared/reference/ref_gpt.py}
THREADS=$(nproc)
[ -x "$BIN" ] || { echo "bench_vs_reference: build first (bash scripts/test.sh builds build/)" >&2; exit 2; }
[ -x "$PY" ] || { echo "bench_vs_reference: $PY missing: run scripts/setup.sh" >&2; exit 2; }
[ -f "$REF" ] || { echo "bench_vs_reference: no reference at $REF (set SSMAX_REFERENCE)" >&2; exit 2; }
[ -z "$COMPILE" ] || [ "$COMPILE" = --compile ] || { echo "bench_vs_reference: 4th argument is --compile or nothing" >&2; exit 2; }
OUT=$(mktemp /tmp/ssmax-bench-ref.XXXXXX)
trap 'rm -f "$OUT"' EXIT

echo "config $CONFIG, $ROUNDS rounds of $STEPS steps, $THREADS threads, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
for ((round = 1; round <= ROUNDS; round++)); do
  for normalizer in softmax ssmax ssmax_bias; do
    ours=$("$BIN" bench "$CONFIG" --normalizers "$normalizer" --steps "$STEPS" --warmup 2 --set threads="$THREADS" \
             --set device=cpu 2>/dev/null | "$PY" -c 'import json, sys; print(json.loads(sys.stdin.readline())["tokens_per_s"])')
    eager=$("$PY" "$REF" "$CONFIG" --steps "$STEPS" --warmup 2 --threads "$THREADS" --normalizer "$normalizer" |
              "$PY" -c 'import json, sys; print(json.loads(sys.stdin.readline())["tokens_per_s"])')
    compiled=—
    if [ -n "$COMPILE" ]; then
      compiled=$("$PY" "$REF" "$CONFIG" --steps "$STEPS" --warmup 3 --threads "$THREADS" --normalizer "$normalizer" \
                   --compile 2>/dev/null | "$PY" -c 'import json, sys; print(json.loads(sys.stdin.readline())["tokens_per_s"])')
    fi
    printf 'round %d %-10s ssmax-gpt %9.0f tok/s   eager %9.0f tok/s   compiled %9s tok/s\n' \
      "$round" "$normalizer" "$ours" "$eager" "$compiled"
    echo "$normalizer $ours $eager $compiled" >>"$OUT"
  done
done
"$PY" - "$OUT" <<'PY'
import math, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, ours, eager, compiled = line.split()
    rows.setdefault(name, []).append((float(ours), float(eager), float(compiled) if compiled != "—" else math.nan))
print(f"{'normalizer':<11}{'ssmax-gpt':>12}{'eager':>12}{'ratio':>8}{'compiled':>12}{'ratio':>8}   (medians, tokens/s)")
for name, r in rows.items():
    ours = statistics.median(x[0] for x in r)
    eager = statistics.median(x[1] for x in r)
    ratio = statistics.median(x[0] / x[1] for x in r)
    comp = [x for x in r if not math.isnan(x[2])]
    ctext = f"{statistics.median(x[2] for x in comp):12.0f}{statistics.median(x[0] / x[2] for x in comp):8.2f}" if comp else f"{'—':>12}{'—':>8}"
    print(f"{name:<11}{ours:12.0f}{eager:12.0f}{ratio:8.2f}{ctext}")
PY
