#!/usr/bin/env bash
# End-to-end: Ctrl-C checkpoints and exits 130, --resume finishes the run, export, sweep restartability,
# and a diverging run stops naming the step.
# Usage: bash tests/cli/resume_signal.sh BINARY SCRATCH_DIR [PYTHON]
set -u
source "$(dirname "$0")/lib/common.sh"
cli_test_init "$@"

triplet_corpus >"$S/corpus.txt"
cat >"$S/config.json" <<JSON
{"name": "signal", "threads": 1, "device": "cpu", "out_dir": "$S/run",
 "data": {"sources": ["$S/corpus.txt"], "dataset_dir": "$S/cache", "tokenizer": {"vocab_size": 300}},
 "model": {"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 32, "position": "rope",
           "attention": {"normalizer": "ssmax"}},
 "optim": {"warmup_steps": 5},
 "train": {"batch_size": 4, "max_steps": 3000, "log_every": 10, "eval_every": 1000, "eval_batches": 2,
           "checkpoint_every": 100000}}
JSON

# 1. SIGINT: finish the step, checkpoint, say how to resume, exit 130.
"$BIN" train "$S/config.json" 2>"$S/sigint.err" &
pid=$!
for _ in $(seq 1 300); do
  [ -s "$S/run/metrics.jsonl" ] && break
  sleep 0.1
done
kill -INT "$pid"
wait "$pid"
rc=$?
check "SIGINT exits 130 (got $rc)" test "$rc" -eq 130
check "SIGINT message says how to resume" grep -q "train --resume $S/run" "$S/sigint.err"
check "SIGINT wrote a checkpoint" bash -c "compgen -G \"$S/run/checkpoints/step_*.json\" >/dev/null"

# 2. --resume finishes it (shorter max_steps is an allowed change).
"$BIN" train --resume "$S/run" --set train.max_steps=200 2>"$S/resume.err"
rc=$?
check "resume exits 0 (got $rc)" test "$rc" -eq 0
check "resume reached step 200" test -f "$S/run/checkpoints/step_00000200.json"
check "resume logged where it started" grep -q "resumed $S/run from" "$S/resume.err"
check "resume refuses a model change" bash -c "'$BIN' train --resume '$S/run' --set model.n_embd=64 2>&1 | grep -q 'cannot change model.n_embd'"

# 3. export: writes both files, refuses to overwrite without --force.
"$BIN" export "$S/run" --out "$S/model.safetensors" 2>/dev/null
check "export wrote weights and config" test -s "$S/model.safetensors" -a -s "$S/model.config.json"
"$BIN" export "$S/run" --out "$S/model.safetensors" 2>/dev/null
rc=$?
check "export refuses to overwrite (exit 2, got $rc)" test "$rc" -eq 2
if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  # An independent reader: the published safetensors layout, parsed with plain Python + PyTorch.
  /usr/bin/python3 - "$S/model.safetensors" >"$S/py.out" 2>&1 <<'PY'
import json, struct, sys, torch
raw = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
header = json.loads(raw[8:8 + n])
for name, info in header.items():
    if name == '__metadata__':
        continue
    b, e = info['data_offsets']
    t = torch.frombuffer(bytearray(raw[8 + n + b:8 + n + e]), dtype=torch.float32).view(info['shape'])
    assert torch.isfinite(t).all(), name
print(sorted(k for k in header if k != '__metadata__')[0], len(header) - 1)
PY
  check "python reads the export (got: $(cat "$S/py.out"))" grep -q "h.0.attn.c_attn.weight" "$S/py.out"
fi

# 4. sweep: 2 normalizers × 2 seeds, then the same command again skips all four.
"$BIN" sweep "$S/config.json" --normalizers softmax,ssmax --seeds 1,2 --set out_dir="$S/sweep" \
  --set train.max_steps=6 --set train.checkpoint_every=3 2>"$S/sweep.err"
check "sweep exit 0" test $? -eq 0
check "sweep made 4 runs" test "$(ls -d "$S"/sweep/*/ | wc -l)" -eq 4
check "sweep shows progress" grep -q "run 4/4" "$S/sweep.err"
"$BIN" sweep "$S/config.json" --normalizers softmax,ssmax --seeds 1,2 --set out_dir="$S/sweep" \
  --set train.max_steps=6 --set train.checkpoint_every=3 2>"$S/sweep2.err"
check "sweep rerun skips finished runs" grep -q "4 runs (0 trained, 4 already finished)" "$S/sweep2.err"

# 5. --vary: any --set-able key becomes a sweep axis, named in the run directories.
"$BIN" sweep "$S/config.json" --normalizers ssmax --vary model.attention.s_init=0.2,0.5 --seeds 7 \
  --set out_dir="$S/vary" --set train.max_steps=2 2>"$S/vary.err"
check "--vary made one run per value" test -d "$S/vary/normalizer=ssmax_s_init=0.5_seed=7" \
  -a -d "$S/vary/normalizer=ssmax_s_init=0.2_seed=7"
check "--vary set the value" grep -q '"s_init": 0.5' "$S/vary/normalizer=ssmax_s_init=0.5_seed=7/config.json"
"$BIN" sweep "$S/config.json" --vary model.n_head=3 --set out_dir="$S/bad" 2>"$S/bad.err"
rc=$?
check "sweep validates every combination first (exit 2, got $rc)" test "$rc" -eq 2
check "nothing trained for an invalid sweep" test ! -e "$S/bad/n_head=3"
expect_fail 2 "init_from = '$S/hf': a sweep does not start runs from a Hugging Face checkpoint" -- \
  "$BIN" sweep "$S/config.json" --normalizers softmax,ssmax --set init_from="$S/hf" --set out_dir="$S/bad-hf"
check "nothing trained for a sweep with init_from" test ! -e "$S/bad-hf"

# 6. The newest checkpoint deleted by hand: a run directory falls back to the previous one, and says which is gone.
rm "$S/run/checkpoints/step_00000200.pt"
"$BIN" export "$S/run" --out "$S/older.safetensors" 2>"$S/missing.err"
rc=$?
check "the previous checkpoint is used (exit 0, got $rc)" test "$rc" -eq 0
check "the missing checkpoint is named" \
  grep -q "skipping missing checkpoint: $S/run/checkpoints/step_00000200.pt is gone" "$S/missing.err" ||
  show "$S/missing.err"

cli_test_finish
