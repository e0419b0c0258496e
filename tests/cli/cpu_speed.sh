#!/usr/bin/env bash
# End-to-end: the CPU's speed bookkeeping as a user meets it in train.log (src/train/cpu_blas.h, peak_flops.h).
#  - the log names the BLAS chosen for the matrix products with both libraries' figures, measured once and then
#    read from the machine cache; cpu_blas = "aten" forces one, an unknown value is refused;
#  - a cached CPU peak planted too low is measured again during the run, corrected in the cache, and no record's
#    MFU passes 100 %;
#  - train.precision = "bf16" on the CPU says whether this CPU has bf16 matrix instructions or emulates them.
# Usage: bash tests/cli/cpu_speed.sh BINARY SCRATCH_DIR [PYTHON]
set -u
source "$(dirname "$0")/lib/common.sh"
cli_test_init "$@"

export SSMAX_CACHE_DIR="$S/machine"  # this test's own machine cache
cycled_corpus >"$S/corpus.txt"
CFG="$S/tiny.json"
write_tiny_config "$CFG"
openblas=yes

# --- the BLAS choice ------------------------------------------------------------------------------------------
run_expect 0 "$BIN" train "$CFG" --set "out_dir=$S/first"
line=$(grep "CPU matrix products:" "$S/first/train.log" | head -1)
echo "      first run: ${line#*] }"
if grep -q "OpenBLAS: could not load\|OpenBLAS: built without" <<<"$line"; then
  openblas=no
  ok "OpenBLAS is not loaded here; the log says why: ${line#*CPU matrix products: }"
else
  check "the first run timed both libraries and names both figures" \
    grep -qE "GFLOP/s on this model's products \((OpenBLAS|ATen).*: [0-9]+; measured\)" <<<"$line"
fi
run_expect 0 "$BIN" train "$CFG" --set "out_dir=$S/second"
if [ "$openblas" = yes ]; then
  check "the second run read the choice from the machine cache" \
    grep -q "CPU matrix products: .*; cached)" "$S/second/train.log" || show "$S/second/train.log"
  check "same config and seed, same machine: the same losses" \
    cmp -s <(grep -o '"train_loss":[^,]*' "$S/first/metrics.jsonl") \
    <(grep -o '"train_loss":[^,]*' "$S/second/metrics.jsonl")
fi
run_expect 0 "$BIN" train "$CFG" --set "out_dir=$S/forced" --set cpu_blas=aten
check "cpu_blas = aten runs ATen's products without timing" \
  grep -q "CPU matrix products: ATen.*(\(cpu_blas = aten\|OpenBLAS: .*\))$" "$S/forced/train.log" ||
  show "$S/forced/train.log"
expect_fail 2 "cpu_blas" -- "$BIN" train "$CFG" --set cpu_blas=mkl

# --- a peak planted too low is corrected; MFU never above 100 % -------------------------------------------------
python3 - "$SSMAX_CACHE_DIR/machine_speed.json" <<'PY'
import json, sys
path = sys.argv[1]
cache = json.load(open(path))
planted = 0
for key, value in cache.items():
    if isinstance(value, (int, float)):  # the peaks; the BLAS choices are objects
        cache[key] = 1e-6
        planted += 1
json.dump(cache, open(path, "w"))
sys.exit(0 if planted else 1)
PY
check "a peak of 1e-6 TFLOP/s planted in the machine cache" test $? -eq 0
run_expect 0 "$BIN" train "$CFG" --set "out_dir=$S/low" --set train.max_steps=6 --set train.log_every=2
check "the run said the cached peak was too low and measured it again" \
  grep -q "above the cached peak of 1e-06: the peak is wrong (measured low); measuring it again" "$S/low/train.log" ||
  show "$S/low/train.log"
check "every training record's MFU is in (0, 1]" python3 -c '
import json, sys
records = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
mfu = [r.get("mfu", 0) for r in records if r.get("train_loss") is not None]
print("      mfu:", ", ".join(f"{m:.3f}" for m in mfu))
sys.exit(0 if mfu and all(0 < m <= 1 for m in mfu) else 1)' "$S/low/metrics.jsonl"
check "no log line prints an MFU above 100 %" bash -c "! grep -E 'mfu ([1-9][0-9]{2,}|100\.[0-9]*[1-9])' '$S/low/train.log'"
check "the cache holds the corrected peak" python3 -c '
import json, sys
peaks = [v for v in json.load(open(sys.argv[1])).values() if isinstance(v, (int, float))]
sys.exit(0 if peaks and all(p > 1e-4 for p in peaks) else 1)' "$SSMAX_CACHE_DIR/machine_speed.json"

# --- bf16 on the CPU ------------------------------------------------------------------------------------------
run_expect 0 "$BIN" train "$CFG" --set "out_dir=$S/bf16" --set train.precision=bf16 --set train.max_steps=2
if grep -qw amx_bf16 /proc/cpuinfo || grep -qw avx512_bf16 /proc/cpuinfo; then
  check "bf16 on a CPU with bf16 instructions names them" \
    grep -q 'matrix products in bf16 on this CPU' "$S/bf16/train.log" || show "$S/bf16/train.log"
else
  check "bf16 on a CPU without bf16 instructions says it is emulated" \
    grep -q 'bf16 is emulated and slower than fp32' "$S/bf16/train.log" || show "$S/bf16/train.log"
fi

# Evaluations in bf16 when asked (--precision), here on the bf16-trained run.
run_expect 0 "$BIN" eval "$S/bf16" --lengths 16 --batches 2 --precision bf16 --out "$S/bf16-eval"
check "eval --precision bf16 wrote its results" test -s "$S/bf16-eval/eval.json"
run_expect 0 "$BIN" generate "$S/bf16" --prompt "the lord" --max-new-tokens 4 --temperature 0 --precision bf16

# --- bench names the library ------------------------------------------------------------------------------------
run_expect 0 "$BIN" bench "$CFG" --normalizers softmax --steps 1 --warmup 0
check "bench's line names the library of the products and an MFU in (0, 1]" python3 -c '
import json, sys
line = json.loads(next(l for l in open(sys.argv[1]) if l.startswith("{")))
sys.exit(0 if line["cpu_blas"] and 0 < line["mfu"] <= 1 else 1)' "$S/out.txt"

cli_test_finish
