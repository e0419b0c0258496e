#!/usr/bin/env bash
# End-to-end: the CPU's speed bookkeeping as a user meets it in train.log (src/train/cpu_blas.h, peak_flops.h).
#  - the log names the BLAS chosen for the matrix products with both libraries' figures, measured once and then
#    read from the machine cache — unless the timing was taken under load: then timed again, saying why; a resumed
#    run keeps its checkpoint's library; cpu_blas = "aten" forces one, an unknown value is refused;
#  - a cached CPU peak planted too low is measured again during the run, corrected in the cache, and no record's
#    MFU passes 100 %; one planted implausibly high is measured again before the first step;
#  - train.precision = "bf16" on the CPU says whether this CPU has bf16 matrix instructions or emulates them, and on
#    a CPU without them (simulated: SSMAX_HIDE_CPU_FLAGS, oneDNN/ATen/MKL kept to AVX2) no measurement stalls the run.
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
    grep -qE "GFLOP/s on this model's products \((OpenBLAS|ATen).*: [0-9]+; measured" <<<"$line"
fi
# The machine cache's entries with the conditions of a quiet machine (steady), or of a busy one.
set_conditions() {
  python3 - "$SSMAX_CACHE_DIR/machine_speed.json" "$1" <<'PY'
import json, sys
path, steady = sys.argv[1], sys.argv[2] == "steady"
cache = json.load(open(path))
for value in cache.values():
    value.update({"others_cores": 0.0 if steady else 64.0, "spread": 0.0, "measurements": 1})
json.dump(cache, open(path, "w"))
PY
}
# The suite runs tests in parallel, so the first timing may have been taken under load: planted quiet, it is kept.
set_conditions steady
run_expect 0 "$BIN" train "$CFG" --set "out_dir=$S/second"
if [ "$openblas" = yes ]; then
  check "the second run read the choice from the machine cache" \
    grep -q "CPU matrix products: .*; cached)" "$S/second/train.log" || show "$S/second/train.log"
  check "same config and seed, same machine: the same losses" \
    cmp -s <(grep -o '"train_loss":[^,]*' "$S/first/metrics.jsonl") \
    <(grep -o '"train_loss":[^,]*' "$S/second/metrics.jsonl")
fi
if [ "$openblas" = yes ]; then
  set_conditions busy
  run_expect 0 "$BIN" train "$CFG" --set "out_dir=$S/busy" --set train.max_steps=2
  check "a timing taken under load is timed again, saying why" \
    grep -q "again, as the last timing was taken under load: others kept 64.0" "$S/busy/train.log" ||
    show "$S/busy/train.log"
fi
# A resumed run keeps the library its checkpoint was written with, whatever the cache says since: planted, the
# other library clearly faster.
if [ "$openblas" = yes ]; then
  run_expect 0 "$BIN" train "$CFG" --set "out_dir=$S/kept" --stop-at 2
  used=$(grep -o "CPU matrix products: [A-Za-z]*" "$S/kept/train.log" | head -1 | awk '{print $4}')
  [ "$used" = OpenBLAS ] && used=openblas other=aten || used=aten other=openblas
  python3 - "$SSMAX_CACHE_DIR/machine_speed.json" "$other" <<'PY'
import json, sys
path, other = sys.argv[1], sys.argv[2]
cache = json.load(open(path))
for value in cache.values():
    if "blas" in value:
        value.update({"blas": other, f"{other}_gflops": 1e6, "others_cores": 0.0, "spread": 0.0})
json.dump(cache, open(path, "w"))
PY
  run_expect 0 "$BIN" train --resume "$S/kept"
  check "the resumed run kept $used, as before the checkpoint" \
    grep -q "CPU matrix products: .*(as before the checkpoint, for a bit-identical continuation)" "$S/kept/train.log" ||
    show "$S/kept/train.log"
  run_expect 0 "$BIN" train "$CFG" --set "out_dir=$S/unbroken" --set "cpu_blas=$used"
  check "its losses equal an unbroken run's on $used" \
    cmp -s <(grep -o '"train_loss":[^,]*' "$S/kept/metrics.jsonl") <(grep -o '"train_loss":[^,]*' "$S/unbroken/metrics.jsonl")
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
    if "tflops" in value:  # the peaks (the BLAS choices hold "blas")
        value.update({"tflops": 1e-6, "others_cores": 0.0, "spread": 0.0})
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
peaks = [v["tflops"] for v in json.load(open(sys.argv[1])).values() if "tflops" in v]
sys.exit(0 if peaks and all(p > 1e-4 for p in peaks) else 1)' "$SSMAX_CACHE_DIR/machine_speed.json"

# --- a peak planted implausibly high is not trusted ---------------------------------------------------------------
python3 - "$SSMAX_CACHE_DIR/machine_speed.json" <<'PY'
import json, sys
path = sys.argv[1]
cache = json.load(open(path))
for value in cache.values():
    if "tflops" in value:
        value.update({"tflops": 1e30, "others_cores": 0.0, "spread": 0.0})
json.dump(cache, open(path, "w"))
PY
run_expect 0 "$BIN" train "$CFG" --set "out_dir=$S/high" --set train.max_steps=2 --set train.log_every=1
check "a cached peak of 1e30 TFLOP/s is called implausible and measured again" \
  grep -q "the cached peak of 1e+30 TFLOP/s is implausible .*; measuring again" "$S/high/train.log" ||
  show "$S/high/train.log"
check "and the MFU is a real figure, not 0.0 %" bash -c "grep 'step 2/2' '$S/high/train.log' | grep -qE 'mfu ([1-9]|0\.[1-9])'"

# --- bf16 on the CPU ------------------------------------------------------------------------------------------
run_expect 0 "$BIN" train "$CFG" --set "out_dir=$S/bf16" --set train.precision=bf16 --set train.max_steps=2
if grep -qw amx_bf16 /proc/cpuinfo || grep -qw avx512_bf16 /proc/cpuinfo; then
  check "bf16 on a CPU with bf16 instructions names them" \
    grep -q 'matrix products in bf16 on this CPU' "$S/bf16/train.log" || show "$S/bf16/train.log"
else
  check "bf16 on a CPU without bf16 instructions says it is emulated" \
    grep -q 'bf16 is emulated and slower than fp32' "$S/bf16/train.log" || show "$S/bf16/train.log"
fi

# A CPU without bf16 units (an AVX2-only AMD EPYC), simulated: bf16 products are emulated at ~1 GFLOP/s, where one
# 4096² product takes minutes. The bf16 peak is not timed, the warning says the cost, and the run takes seconds.
without_bf16=(env SSMAX_HIDE_CPU_FLAGS='avx512*,amx*,avx_vnni' ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2
              MKL_ENABLE_INSTRUCTIONS=AVX2 timeout 120)
start=$(date +%s)
run_expect 0 "${without_bf16[@]}" "$BIN" train "$CFG" --set "out_dir=$S/emulated" --set train.precision=bf16 \
  --set train.max_steps=2
echo "      a bf16 run on the simulated CPU took $(($(date +%s) - start)) s"
check "the warning says bf16 is emulated and what it costs" \
  grep -qE 'bf16 is emulated and slower than fp32 here \([0-9]+× float32' "$S/emulated/train.log" ||
  show "$S/emulated/train.log"
check "the peak for MFU is float32's, bf16 not timed" \
  grep -q "bf16 is emulated on this CPU: not timed" "$S/emulated/train.log" || show "$S/emulated/train.log"

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
