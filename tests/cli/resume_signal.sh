#!/usr/bin/env bash
# End-to-end: Ctrl-C checkpoints and exits 130, --resume finishes the run, export, sweep restartability,
# and a diverging run stops naming the step.
set -u
bin=$1
work=$2
rm -rf "$work" && mkdir -p "$work"
passed=0
failed=0
check() {  # check DESCRIPTION CONDITION...
  local what=$1; shift
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $what"; fi
}

awk 'BEGIN { split("alpha beta gamma delta epsilon zeta eta theta", w, " ");
  for (i = 0; i < 4000; i++) printf "%s %s %s.\n", w[i%8+1], w[(i*3)%8+1], w[(i*7)%8+1] }' >"$work/corpus.txt"
cat >"$work/config.json" <<JSON
{"name": "signal", "threads": 1, "device": "cpu", "out_dir": "$work/run",
 "data": {"sources": ["$work/corpus.txt"], "dataset_dir": "$work/cache", "tokenizer": {"vocab_size": 300}},
 "model": {"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 32, "position": "rope",
           "attention": {"normalizer": "ssmax"}},
 "optim": {"warmup_steps": 5},
 "train": {"batch_size": 4, "max_steps": 3000, "log_every": 10, "eval_every": 1000, "eval_batches": 2,
           "checkpoint_every": 100000}}
JSON

# 1. SIGINT: finish the step, checkpoint, say how to resume, exit 130.
"$bin" train "$work/config.json" 2>"$work/sigint.err" &
pid=$!
for _ in $(seq 1 300); do
  [ -s "$work/run/metrics.jsonl" ] && break
  sleep 0.1
done
kill -INT "$pid"
wait "$pid"
rc=$?
check "SIGINT exits 130 (got $rc)" test "$rc" -eq 130
check "SIGINT message says how to resume" grep -q "train --resume $work/run" "$work/sigint.err"
check "SIGINT wrote a checkpoint" bash -c "compgen -G \"$work/run/checkpoints/step_*.json\" >/dev/null"

# 2. --resume finishes it (shorter max_steps is an allowed change).
"$bin" train --resume "$work/run" --set train.max_steps=200 2>"$work/resume.err"
rc=$?
check "resume exits 0 (got $rc)" test "$rc" -eq 0
check "resume reached step 200" test -f "$work/run/checkpoints/step_00000200.json"
check "resume logged where it started" grep -q "resumed $work/run from" "$work/resume.err"
check "resume refuses a model change" bash -c "'$bin' train --resume '$work/run' --set model.n_embd=64 2>&1 | grep -q 'cannot change model.n_embd'"

# 3. export: writes both files, refuses to overwrite without --force.
"$bin" export "$work/run" --out "$work/model.safetensors" 2>/dev/null
check "export wrote weights and config" test -s "$work/model.safetensors" -a -s "$work/model.config.json"
"$bin" export "$work/run" --out "$work/model.safetensors" 2>/dev/null
rc=$?
check "export refuses to overwrite (exit 2, got $rc)" test "$rc" -eq 2
if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  # An independent reader: the published safetensors layout, parsed with plain Python + PyTorch.
  /usr/bin/python3 - "$work/model.safetensors" >"$work/py.out" 2>&1 <<'PY'
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
  check "python reads the export (got: $(cat "$work/py.out"))" grep -q "h.0.attn.c_attn.weight" "$work/py.out"
fi

# 4. sweep: 2 normalizers × 2 seeds, then the same command again skips all four.
"$bin" sweep "$work/config.json" --normalizers softmax,ssmax --seeds 1,2 --set out_dir="$work/sweep" \
  --set train.max_steps=6 --set train.checkpoint_every=3 2>"$work/sweep.err"
check "sweep exit 0" test $? -eq 0
check "sweep made 4 runs" test "$(ls -d "$work"/sweep/*/ | wc -l)" -eq 4
check "sweep shows progress" grep -q "run 4/4" "$work/sweep.err"
"$bin" sweep "$work/config.json" --normalizers softmax,ssmax --seeds 1,2 --set out_dir="$work/sweep" \
  --set train.max_steps=6 --set train.checkpoint_every=3 2>"$work/sweep2.err"
check "sweep rerun skips finished runs" grep -q "4 runs (0 trained, 4 already finished)" "$work/sweep2.err"

# 5. --vary: any --set-able key becomes a sweep axis, named in the run directories.
"$bin" sweep "$work/config.json" --normalizers ssmax --vary model.attention.s_init=0.2,0.5 --seeds 7 \
  --set out_dir="$work/vary" --set train.max_steps=2 2>"$work/vary.err"
check "--vary made one run per value" test -d "$work/vary/normalizer=ssmax_s_init=0.5_seed=7" \
  -a -d "$work/vary/normalizer=ssmax_s_init=0.2_seed=7"
check "--vary set the value" grep -q '"s_init": 0.5' "$work/vary/normalizer=ssmax_s_init=0.5_seed=7/config.json"
"$bin" sweep "$work/config.json" --vary model.n_head=3 --set out_dir="$work/bad" 2>"$work/bad.err"
rc=$?
check "sweep validates every combination first (exit 2, got $rc)" test "$rc" -eq 2
check "nothing trained for an invalid sweep" test ! -e "$work/bad/n_head=3"

echo "$passed passed, $failed failed"
test "$failed" -eq 0
