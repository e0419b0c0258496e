#!/usr/bin/env bash
# Data-parallel training over c10d/Gloo on loopback, as torchrun or any launcher starts it:
#  - 2 ranks × accum 1 match 1 process × accum 2 (same global micro-batches) in every logged loss;
#  - only rank 0 writes: one set of checkpoints, one train.log, metrics with world_size 2;
#  - a 2-rank checkpoint resumes at world size 1 (accum rescaled to keep the global batch) and 2, matching the
#    unbroken run;
#  - SIGTERM to one rank stops both after the same step, with a checkpoint;
#  - a killed rank and a stopped (hung) rank end the survivor within distributed.timeout_s, naming the rank;
#    the run resumes afterwards;
#  - two torchrun "nodes" rendezvous over c10d on 127.0.0.1; a 2-rank sweep and study; refused commands and bad
#    variables.
# Usage: bash tests/cli/distributed.sh BINARY SCRATCH_DIR PYTHON
set -u
source "$(dirname "$0")/lib/common.sh"
cli_test_init --python "$@"
TORCHRUN="$(dirname "$PY")/torchrun"
export GLOO_SOCKET_IFNAME=lo MASTER_ADDR=127.0.0.1
unset RANK WORLD_SIZE LOCAL_RANK LOCAL_WORLD_SIZE MASTER_PORT

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# launch_bg NAME WORLD CMD...: starts WORLD ranks of CMD in the background (pids in PIDS, logs NAME.rankR.out).
launch_bg() {
  local name=$1 world=$2 port
  shift 2
  port=$(free_port)
  PIDS=()
  for ((r = 0; r < world; r++)); do
    RANK=$r LOCAL_RANK=$r WORLD_SIZE=$world LOCAL_WORLD_SIZE=$world MASTER_PORT=$port "$@" >"$name.rank$r.out" 2>&1 &
    PIDS+=($!)
  done
}
# launch NAME WORLD CMD...: runs WORLD ranks to the end; RCS holds their exit codes.
launch() {
  launch_bg "$@"
  RCS=()
  for pid in "${PIDS[@]}"; do wait "$pid"; RCS+=($?); done
}
# shellcheck disable=SC2317  # called through check
all_rc() { local want=$1; for rc in "${RCS[@]}"; do [ "$rc" -eq "$want" ] || return 1; done; }

generated_corpus 11 >corpus.txt
cat >tiny.json <<EOF
{
  "name": "tiny", "seed": 5, "out_dir": "$S/run", "device": "cpu", "threads": 1, "cpu_blas": "aten",
  "data": {"sources": ["$S/corpus.txt"], "dataset_dir": "$S/cache", "tokenizer": {"vocab_size": 320}},
  "model": {"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 32, "position": "rope", "norm": "rmsnorm",
            "mlp": "swiglu", "tie_embeddings": false, "attention": {"normalizer": "ssmax_bias"}},
  "optim": {"lr": 0.003, "min_lr": 0.0003, "warmup_steps": 3},
  "train": {"batch_size": 4, "max_steps": 12, "log_every": 2, "eval_every": 6, "eval_batches": 3,
            "checkpoint_every": 6, "keep_last": 5},
  "distributed": {"timeout_s": 30, "bucket_mb": 0.01}
}
EOF
"$BIN" prepare tiny.json >prepare.out 2>&1 || { echo "FAIL: prepare"; show prepare.out; exit 1; }

# compare_losses A B TOLERANCE: every train/val loss and grad norm of run A equals run B's within TOLERANCE.
# shellcheck disable=SC2317  # called through check
compare_losses() {
  "$PY" - "$1/metrics.jsonl" "$2/metrics.jsonl" "$3" <<'PY'
import json, sys
def losses(path):
    out = {}
    for line in open(path):
        r = json.loads(line)
        for k in ("train_loss", "val_loss", "grad_norm"):
            if r.get(k) is not None:
                out[(r["step"], k)] = r[k]
    return out
a, b, tol = losses(sys.argv[1]), losses(sys.argv[2]), float(sys.argv[3])
if not a or a.keys() != b.keys():
    print(f"      different records: {sorted(set(a) ^ set(b))[:6]}"); sys.exit(1)
worst = max(abs(a[k] - b[k]) for k in a)
print(f"      {len(a)} values, largest difference {worst:.3g} (tolerance {tol})")
sys.exit(0 if worst <= tol else 1)
PY
}

# --- 1 process × accum 2 versus 2 ranks × accum 1 ----------------------------------------------------------
"$BIN" train tiny.json --set out_dir="$S/one" --set train.grad_accum_steps=2 >one.out 2>&1
check "1 process with accum 2 trains" test $? -eq 0
launch two 2 "$BIN" train tiny.json --set out_dir="$S/two"
check "2 ranks train (exit codes ${RCS[*]})" all_rc 0 || show two.rank0.out two.rank1.out
check "2 ranks × accum 1 = 1 process × accum 2 (losses, grad norms)" compare_losses one two 1e-6
check "metrics record world_size 2 and the all-reduce wait" \
  grep -q '"sync_ms":.*"world_size":2' two/metrics.jsonl
check "metrics count global tokens (12 steps × 2 ranks × 4 × 32)" \
  grep -q '"step":12,"tokens":3072' <(sed 's/"elapsed_s":[^,]*,//' two/metrics.jsonl | "$PY" -c '
import json, sys
for l in sys.stdin: r = json.loads(l); print(json.dumps({"step": r["step"], "tokens": r["tokens"]}, separators=(",", ":")))')
check "checkpoints written once (steps 6 and 12, no leftovers)" \
  test "$(ls two/checkpoints | tr '\n' ' ')" = "latest step_00000006.json step_00000006.pt step_00000012.json step_00000012.pt "
check "only rank 0 logs the run (rank 1 prints no info lines)" test ! -s two.rank1.out
check "the run header names both ranks" grep -q "rank 1 .*cpu on .*gloo" two/train.log

launch no_overlap 2 "$BIN" train tiny.json --set out_dir="$S/no_overlap" --set distributed.overlap=false
check "all-reduce after backward (overlap off) trains (exit codes ${RCS[*]})" all_rc 0
check "  ... to the same numbers as overlapped buckets" compare_losses two no_overlap 0

# --- drifted replicas: the checksum at the checkpoint stops both ranks before anything is written -----------
launch drift 2 env SSMAX_TEST_PERTURB_RANK=1 "$BIN" train tiny.json --set out_dir="$S/drift"
check "a rank whose weights drifted: both exit 1 (got ${RCS[*]})" all_rc 1
check "  ... naming it" grep -q "the weights of rank(s) 1 differ from rank 0's at step 6" drift.rank0.out ||
  show drift.rank0.out
check "  ... and no checkpoint is written" test ! -e drift/checkpoints/step_00000006.pt

# --- single-process commands read a 2-rank checkpoint ------------------------------------------------------
"$BIN" eval two --lengths 32 --batches 4 >eval.out 2>&1
check "eval (one process) reads the 2-rank checkpoint" test $? -eq 0 || show eval.out

# --- stop at 6, resume at world size 1 and 2: both equal the unbroken run ----------------------------------
launch stop 2 "$BIN" train tiny.json --set out_dir="$S/stop" --stop-at 6
check "2 ranks stop at step 6 (exit codes ${RCS[*]})" all_rc 0 || show stop.rank0.out stop.rank1.out
cp -r stop resume1 && cp -r stop resume2
"$BIN" train --resume resume1 >resume1.out 2>&1
check "2-rank checkpoint resumes in one process" test $? -eq 0 || show resume1.out
check "  ... rescaling accumulation 1 → 2 to keep the global batch" grep -q "grad_accum_steps 1 → 2" resume1.out
check "  ... matching the unbroken run" compare_losses two resume1 1e-6
launch resume2 2 "$BIN" train --resume resume2
check "2-rank checkpoint resumes on 2 ranks (exit codes ${RCS[*]})" all_rc 0 || show resume2.rank0.out resume2.rank1.out
check "  ... matching the unbroken run" compare_losses two resume2 1e-6
launch resume3 3 "$BIN" train --resume resume2 --set train.max_steps=14
check "3 ranks cannot share a global batch of 2 micro-batches: exit 2 (got ${RCS[*]})" all_rc 2
check "  ... saying what to pass" grep -q "pass --set train.grad_accum_steps=K" resume3.rank0.out
launch resume_up 2 "$BIN" train --resume one --set train.max_steps=14
check "a 1-process run (accum 2) continues on 2 ranks (accum 1) (exit codes ${RCS[*]})" all_rc 0 ||
  show resume_up.rank0.out resume_up.rank1.out
check "  ... rescaling accumulation 2 → 1" grep -q "grad_accum_steps 2 → 1" resume_up.rank0.out

# --- SIGTERM to one rank: both stop after the same step with one checkpoint; resume finishes ---------------
sed 's/"max_steps": 12/"max_steps": 100000/; s/"checkpoint_every": 6/"checkpoint_every": 100000/' tiny.json >long.json
launch_bg sig 2 "$BIN" train long.json --set out_dir="$S/sig"
for _ in $(seq 100); do grep -q '"step":10,' sig/metrics.jsonl 2>/dev/null && break; sleep 0.2; done
kill -TERM "${PIDS[1]}"
RCS=(); for pid in "${PIDS[@]}"; do wait "$pid"; RCS+=($?); done
check "SIGTERM to rank 1 stops both ranks, both exiting 143 as SIGTERM asks (exit codes ${RCS[*]})" all_rc 143 || show sig.rank0.out sig.rank1.out
check "  ... with one checkpoint and a resume hint" grep -q "continue with: ssmax-gpt train --resume" sig.rank0.out
last=$(ls sig/checkpoints | sed -n 's/step_0*\([0-9]*\)\.pt/\1/p' | tail -1)
check "  ... after the same step on both ranks (one checkpoint, step $last)" test "$(ls sig/checkpoints | grep -c '\.pt$')" -eq 1
launch sig_resume 2 "$BIN" train --resume sig --stop-at $((last + 4))
check "  ... and resumes on 2 ranks (exit codes ${RCS[*]})" all_rc 0 || show sig_resume.rank0.out sig_resume.rank1.out

# --- a killed rank: the survivor exits promptly, naming it; the run resumes ---------------------------------
sed 's/"checkpoint_every": 100000/"checkpoint_every": 20/' long.json >kill.json
launch_bg kill 2 "$BIN" train kill.json --set out_dir="$S/kill"
for _ in $(seq 150); do [ -e kill/checkpoints/step_00000040.json ] && break; sleep 0.2; done
kill -KILL "${PIDS[1]}"
start=$(date +%s)
wait "${PIDS[0]}"
rc=$?
took=$(($(date +%s) - start))
wait "${PIDS[1]}" 2>/dev/null
check "kill -9 rank 1: rank 0 exits 1 (got $rc) within the timeout (${took}s ≤ 30 s)" test "$rc" -eq 1 -a "$took" -le 30
check "  ... naming rank 1" grep -q "rank 1 does not respond (it died or hangs" kill.rank0.out || show kill.rank0.out
check "  ... with one error line, no backtrace" no_backtrace kill.rank0.out
last=$(ls kill/checkpoints | sed -n 's/step_0*\([0-9]*\)\.pt/\1/p' | tail -1)
launch kill_resume 2 "$BIN" train --resume kill --stop-at $((last + 5))
check "  ... and the run resumes from step $last on 2 ranks (exit codes ${RCS[*]})" all_rc 0 ||
  show kill_resume.rank0.out kill_resume.rank1.out

# --- a hung rank (SIGSTOP): the other exits after distributed.timeout_s, naming it -------------------------
launch_bg hang 2 "$BIN" train long.json --set out_dir="$S/hang" --set distributed.timeout_s=4
for _ in $(seq 100); do grep -q '"step":10,' hang/metrics.jsonl 2>/dev/null && break; sleep 0.2; done
kill -STOP "${PIDS[1]}"
start=$(date +%s)
wait "${PIDS[0]}"
rc=$?
took=$(($(date +%s) - start))
kill -KILL "${PIDS[1]}"; wait "${PIDS[1]}" 2>/dev/null
check "a stopped rank 1: rank 0 exits 1 (got $rc) after the 4 s timeout (${took}s ≤ 25 s)" test "$rc" -eq 1 -a "$took" -le 25
check "  ... naming rank 1" grep -q "rank 1 does not respond (it died or hangs" hang.rank0.out || show hang.rank0.out

# --- two torchrun "nodes" rendezvous over c10d on 127.0.0.1 ------------------------------------------------
if [ -x "$TORCHRUN" ]; then
  port=$(free_port)
  for node in 0 1; do
    "$TORCHRUN" --nnodes 2 --nproc-per-node 1 --rdzv-backend c10d --rdzv-endpoint "127.0.0.1:$port" \
      --rdzv-id ssmax-test --max-restarts 0 --no-python "$BIN" train tiny.json --set out_dir="$S/nodes" \
      >"nodes.node$node.out" 2>&1 &
    NODE_PIDS[$node]=$!
  done
  RCS=(); for pid in "${NODE_PIDS[@]}"; do wait "$pid"; RCS+=($?); done
  check "two torchrun nodes train together (exit codes ${RCS[*]})" all_rc 0 || show nodes.node0.out nodes.node1.out
  check "  ... and match the 2-rank run" compare_losses two nodes 1e-6
else
  fail "torchrun not found at $TORCHRUN"
fi

# --- a sweep on 2 ranks: each run distributed in turn ------------------------------------------------------
launch sweep 2 "$BIN" sweep tiny.json --normalizers softmax,ssmax --set out_dir="$S/sweep"
check "a 2-rank sweep trains both runs (exit codes ${RCS[*]})" all_rc 0 || show sweep.rank0.out sweep.rank1.out
check "  ... each with its final checkpoint" test -e sweep/normalizer=softmax/checkpoints/step_00000012.pt -a \
  -e sweep/normalizer=ssmax/checkpoints/step_00000012.pt

# --- a study on 2 ranks: the pretraining runs distributed, the rest left for one process ------------------------
cat >study.json <<JSON
{"config": "tiny.json", "out_dir": "$S/study", "seeds": [1],
 "variants": [{"name": "softmax", "set": {"model.attention.normalizer": "softmax"}},
              {"name": "ssmax", "set": {"model.attention.normalizer": "ssmax"}}],
 "long_context": {"lengths": [32, 64], "windows": 1}}
JSON
launch study 2 "$BIN" study study.json
check "a 2-rank study trains its runs (exit codes ${RCS[*]})" all_rc 0 || show study.rank0.out study.rank1.out
check "  ... both to their last step" test -e study/runs/softmax-seed1/checkpoints/step_00000012.pt -a \
  -e study/runs/ssmax-seed1/checkpoints/step_00000012.pt
check "  ... and says how to finish in one process" grep -q "without torchrun to finish" study.rank0.out
"$BIN" study study.json >study.one.out 2>&1
check "the same study without torchrun evaluates and completes (exit $?)" grep -q '"complete": true' study/report.json ||
  show study.one.out
check "  ... without training again" bash -c "! grep -q '== study .*: train ' study.one.out"

# --- refused launches --------------------------------------------------------------------------------------
launch refuse 2 "$BIN" eval two
check "eval under WORLD_SIZE=2 is refused with exit 2 (got ${RCS[*]})" all_rc 2
check "  ... saying to run it without torchrun" grep -q "run it without torchrun" refuse.rank0.out
RANK=0 WORLD_SIZE=2 "$BIN" train tiny.json --set out_dir="$S/bad" >bad.out 2>&1
check "RANK/WORLD_SIZE without MASTER_ADDR/PORT: exit 2 naming the variable (got $?)" grep -q "MASTER_PORT" bad.out
RANK=2 WORLD_SIZE=2 MASTER_PORT=1 "$BIN" train tiny.json --set out_dir="$S/bad" >bad.out 2>&1
check "RANK outside [0, WORLD_SIZE): exit 2 naming RANK (got $?)" grep -q "RANK=2 is not an integer in \[0, 1\]" bad.out
# A rank that cannot reach the store: our one line, none of c10d's retry log and backtraces (TORCH_CPP_LOG_LEVEL
# brings those back).
unreachable=(env RANK=1 WORLD_SIZE=2 LOCAL_RANK=1 LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=9)
expect_fail 1 "rank 1: could not join the process group at 127.0.0.1:9 within 1 s" -- \
  "${unreachable[@]}" "$BIN" train tiny.json --set out_dir="$S/unreachable" --set distributed.timeout_s=1
TORCH_CPP_LOG_LEVEL=WARNING "${unreachable[@]}" "$BIN" train tiny.json --set out_dir="$S/unreachable" \
  --set distributed.timeout_s=1 >verbose.out 2>&1
check "TORCH_CPP_LOG_LEVEL=WARNING shows c10d's own log" grep -q "c10d" verbose.out

cli_test_finish
