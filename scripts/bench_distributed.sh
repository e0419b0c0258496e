#!/usr/bin/env bash
# Data-parallel speed on this machine: one process with T threads against N ranks (torchrun, Gloo) with T/N
# threads each, at the same global batch (the process accumulates N micro-batches), with the gradient all-reduce
# overlapped with backward and after it. Prints one line per setting: tokens/s (global), ms per step, the time a
# rank waits for the all-reduce after its backward pass, and that wait's share of the step.
# Usage: bash scripts/bench_distributed.sh [CONFIG] [STEPS] [RANKS] [BUCKET_MB]
#        (defaults: configs/kjv-tiny-softmax.json 30 2 25; a smaller bucket gives overlap more to work with)
# Needs a build (build/ssmax-gpt) and the torch environment of scripts/setup.sh (for torchrun).
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${1:-configs/kjv-tiny-softmax.json}
STEPS=${2:-30}
RANKS=${3:-2}
BUCKET_MB=${4:-25}
BIN=$PWD/build/ssmax-gpt
source scripts/lib/env.sh
ENV_DIR=$SSMAX_TORCH_ENV
TORCHRUN=$ENV_DIR/bin/torchrun
CORES=$(nproc)
THREADS_PER_RANK=$((CORES / RANKS > 0 ? CORES / RANKS : 1))
OUT=$(mktemp -d /tmp/ssmax-bench-dist.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
[ -x "$BIN" ] || { echo "bench_distributed: build first (bash scripts/test.sh builds build/)" >&2; exit 2; }
[ -x "$TORCHRUN" ] || { echo "bench_distributed: $TORCHRUN missing: run scripts/setup.sh" >&2; exit 2; }

accum=$("$ENV_DIR/bin/python3" -c 'import json,sys; print(json.load(open(sys.argv[1])).get("train",{}).get("grad_accum_steps",1))' "$CONFIG")
common=(--set train.max_steps="$STEPS" --set train.log_every=5 --set train.eval_every=100000
        --set train.checkpoint_every=100000 --set device=cpu)
"$BIN" prepare "$CONFIG" >/dev/null

# summarize NAME RUN_DIR: mean over the records after the first (warm-up) of tokens/s, ms/step and sync ms.
summarize() {
  "$ENV_DIR/bin/python3" - "$1" "$2/metrics.jsonl" <<'PY'
import json, sys
name, path = sys.argv[1], sys.argv[2]
rows = [r for r in map(json.loads, open(path)) if r.get("tokens_per_s") is not None][1:]
tps = sum(r["tokens_per_s"] for r in rows) / len(rows)
ms = sum(r["ms_per_step"] for r in rows) / len(rows)
sync = [r["sync_ms"] for r in rows if r.get("sync_ms") is not None]
sync_text = f"{sum(sync) / len(sync):7.1f} ms ({100 * sum(sync) / len(sync) / ms:4.1f} % of the step)" if sync else "      —"
print(f"{name:<58} {tps:9.0f} tok/s {ms:8.1f} ms/step   all-reduce wait {sync_text}")
PY
}

echo "config $CONFIG, $STEPS steps, $CORES cores; global batch = batch × $((accum * RANKS)) micro-batches"
"$BIN" train "$CONFIG" "${common[@]}" --set threads="$CORES" --set train.grad_accum_steps=$((accum * RANKS)) \
  --set out_dir="$OUT/one" >"$OUT/one.log" 2>&1
summarize "1 process × $CORES threads, accum $((accum * RANKS))" "$OUT/one"
for overlap in true false; do
  "$TORCHRUN" --standalone --nproc-per-node "$RANKS" --no-python "$BIN" train "$CONFIG" "${common[@]}" \
    --set threads="$THREADS_PER_RANK" --set train.grad_accum_steps="$accum" --set distributed.overlap=$overlap --set distributed.bucket_mb="$BUCKET_MB" \
    --set out_dir="$OUT/ranks-$overlap" >"$OUT/ranks-$overlap.log" 2>&1
  summarize "$RANKS ranks × $THREADS_PER_RANK threads, accum $accum, $BUCKET_MB MB buckets, overlap $overlap" "$OUT/ranks-$overlap"
done
