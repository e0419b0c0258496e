#!/usr/bin/env bash
# End-to-end: prepare and train a tiny model as a user does, then check the run directory
# (config.json, train.log, metrics.jsonl fields, checkpoints), an SSMax run's per-layer "s", a rerun
# of a finished run, and the help/usage exit codes.
# Usage: bash tests/cli/train_smoke.sh BINARY SCRATCH_DIR [PYTHON]
set -u
source "$(dirname "$0")/lib/common.sh"
cli_test_init "$@"

cycled_corpus >"$S/corpus.txt"
CFG="$S/tiny.json"
write_tiny_config "$CFG"

# check_metrics FILE N_LAYER N_HEAD NORMALIZER: every record has the fields; training records carry
# finite train_loss/grad_norm/tokens_per_s, evaluation records val_loss; steps reach max_steps; SSMax
# runs record s per layer (each with one value per head), ssmax_bias also b; softmax runs neither.
# shellcheck disable=SC2317  # called through check
check_metrics() {
  python3 - "$@" <<'PY'
import json, math, sys
path, n_layer, n_head, normalizer = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
records = [json.loads(line) for line in open(path) if line.strip()]
errors = []
if not records:
    errors.append("no records")
keys = ["step", "tokens", "train_loss", "val_loss", "lr", "grad_norm", "tokens_per_s", "elapsed_s"]
for i, r in enumerate(records):
    missing = [k for k in keys if k not in r]
    if missing:
        errors.append(f"record {i} lacks {missing}: {r}")
def finite(v):
    return isinstance(v, (int, float)) and math.isfinite(v)
train = [r for r in records if r.get("train_loss") is not None]
evals = [r for r in records if r.get("val_loss") is not None]
if not train:
    errors.append("no training record (train_loss)")
if not evals:
    errors.append("no evaluation record (val_loss)")
for r in train:
    for k in ("train_loss", "grad_norm", "tokens_per_s", "lr", "elapsed_s", "mfu"):
        if not finite(r.get(k)):
            errors.append(f"training record at step {r.get('step')}: {k} = {r.get(k)!r}")
for r in evals:
    if not finite(r["val_loss"]):
        errors.append(f"evaluation record at step {r.get('step')}: val_loss = {r['val_loss']!r}")
if records and max(r.get("step", 0) for r in records) != 4:
    errors.append(f"last step {max(r.get('step', 0) for r in records)}, expected 4")
if records and max(r.get("tokens", 0) for r in records) != 4 * 4 * 32:
    errors.append(f"tokens {max(r.get('tokens', 0) for r in records)}, expected {4 * 4 * 32}")
def heads(layer):  # a layer is {"mean": m, "heads": [...]} (src/run/metrics.cpp) or a plain list
    return layer.get("heads") if isinstance(layer, dict) else layer
def per_layer_ok(v):
    return (isinstance(v, list) and len(v) == n_layer and
            all(isinstance(heads(l), list) and len(heads(l)) == n_head and all(finite(x) for x in heads(l))
                for l in v))
for r in records:
    for key, wanted in (("s", normalizer != "softmax"), ("b", normalizer == "ssmax_bias")):
        v = r.get(key)
        if not wanted and v:
            errors.append(f"{normalizer} run records {key}: {v}")
        if wanted and not per_layer_ok(v):
            errors.append(f"step {r.get('step')}: {key} = {v!r}, expected {n_layer} layers x {n_head} heads")
for e in errors[:10]:
    print("      -", e)
sys.exit(1 if errors else 0)
PY
}

# --- prepare, then train -----------------------------------------------------------------------------
run_expect 0 "$BIN" prepare "$CFG"
check "prepare wrote a dataset with train and val shards" \
  bash -c "ls '$S'/cache/*/train-000000.bin '$S'/cache/*/val-000000.bin >/dev/null 2>&1"
run_expect 0 "$BIN" train "$CFG"
for f in config.json train.log metrics.jsonl; do
  check "run dir has $f" test -s "$S/run/$f"
done
check "run dir has a checkpoint under checkpoints/" bash -c "ls '$S'/run/checkpoints/* >/dev/null 2>&1"
check "config.json is the resolved config (normalizer softmax, n_layer 1)" python3 -c "
import json, sys
c = json.load(open('$S/run/config.json'))
sys.exit(0 if c['model']['attention']['normalizer'] == 'softmax' and c['model']['n_layer'] == 1 else 1)"
check "train.log has the training steps" grep -q "step 4" "$S/run/train.log"
check "metrics.jsonl records have every field (softmax run: no s)" check_metrics "$S/run/metrics.jsonl" 1 2 softmax

# Rerunning a finished run does no work and leaves its files alone.
before=$(cksum "$S/run/metrics.jsonl" "$S/run/config.json")
run_expect 0 "$BIN" train "$CFG"
check "rerun of a finished run leaves metrics.jsonl and config.json unchanged" \
  test "$before" = "$(cksum "$S/run/metrics.jsonl" "$S/run/config.json")"

# --- SSMax into another out_dir: s per layer and head ---------------------------------------------
run_expect 0 "$BIN" train "$CFG" --set model.attention.normalizer=ssmax --set model.n_layer=2 \
  --set "out_dir=$S/run-ssmax"
check "ssmax run has a checkpoint" bash -c "ls '$S'/run-ssmax/checkpoints/* >/dev/null 2>&1"
check "ssmax metrics.jsonl records s for 2 layers x 2 heads" check_metrics "$S/run-ssmax/metrics.jsonl" 2 2 ssmax
check "ssmax config.json records the override" grep -q '"normalizer": "ssmax"' "$S/run-ssmax/config.json"
run_expect 0 "$BIN" train "$CFG" --set model.attention.normalizer=ssmax_bias --set "out_dir=$S/run-ssmax_bias"
check "ssmax_bias metrics.jsonl records s and b for 1 layer x 2 heads" \
  check_metrics "$S/run-ssmax_bias/metrics.jsonl" 1 2 ssmax_bias

# --- bench: one JSON line per normalizer with speed, model-FLOPs utilisation, the parts of a step, memory -----
run_expect 0 "$BIN" bench "$CFG" --normalizers softmax,ssmax --steps 1 --warmup 0
check "bench prints a complete line per normalizer" python3 -c '
import json, math, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
keys = ["tokens_per_s", "median_step_s", "flops_per_token", "mfu", "peak_tflops", "forward_ms", "backward_ms",
        "optimizer_ms", "peak_rss_mb"]
assert [l["normalizer"] for l in lines] == ["softmax", "ssmax"], lines
assert all(math.isfinite(l[k]) and l[k] > 0 for l in lines for k in keys), lines
assert all(l["forward_ms"] + l["backward_ms"] + l["optimizer_ms"] <= 1000 * l["median_step_s"] * 1.001 for l in lines), lines
' "$S/out.txt"

# --- Help and usage ---------------------------------------------------------------------------------
run_expect 0 "$BIN" --help
run_expect 0 "$BIN" prepare --help
run_expect 0 "$BIN" train --help
check "train --help mentions --set" grep -q -- "--set" "$S/out.txt"
run_expect 2 "$BIN"
run_expect 2 "$BIN" no-such-command
run_expect 2 "$BIN" train
run_expect 2 "$BIN" train "$CFG" --no-such-flag

cli_test_finish
