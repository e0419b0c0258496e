#!/usr/bin/env bash
# End-to-end: a run cut short in the ways SIGINT tests (resume_signal.sh) do not cover.
#  - two processes training into one out_dir: the second is refused naming the first; kill -9 of the first frees
#    the directory (the lock is the kernel's, so a crash cannot leave it stuck) and the run resumes;
#  - SIGTERM during training: a checkpoint, the resume hint, exit 143 (128 + SIGTERM, as a shell reports it);
#  - a file-size limit (ulimit -f, a disk that fills) during a checkpoint write: exit 1 naming the file, no partial
#    file left, the previous checkpoint intact and resumable; a train.log that cannot grow said once;
#  - SIGTERM during sweep (exit 143, the rerun finishes), prepare (no dataset that looks complete; the rerun
#    rebuilds it), eval and needle (no result file); SIGTERM during export and compare and SIGINT during eval,
#    each caught while writing a file: no temporary file left, an export replaced with --force old or new as a
#    whole, a report without summary.json;
#  - a file-size limit during a shard write in prepare: exit 1 naming the shard, no dataset, the rerun builds it.
# Usage: bash tests/cli/cut_short.sh BINARY SCRATCH_DIR [PYTHON]
set -u
source "$(dirname "$0")/lib/common.sh"
cli_test_init "$@"

triplet_corpus >"$S/corpus.txt"
write_tiny_config "$S/long.json" 's/"max_steps": 4/"max_steps": 100000/; s/"checkpoint_every": 2/"checkpoint_every": 20/;
  s/"eval_every": 2/"eval_every": 100000/; s/"log_every": 2/"log_every": 10/'
newest_step() { ls "$1"/checkpoints | sed -n 's/^step_0*\([0-9][0-9]*\)\.pt$/\1/p' | sort -n | tail -1; }
wait_for() {  # wait_for FILE: up to 60 s
  for _ in $(seq 600); do [ -e "$1" ] && return 0; sleep 0.1; done
  return 1
}

# --- One writer per out_dir ----------------------------------------------------------------------------------
"$BIN" train long.json >first.log 2>&1 &
first=$!
wait_for run/checkpoints/step_00000020.json
expect_fail 2 "out_dir = '$S/run' is in use by another process (pid $first:" -- "$BIN" train long.json
expect_fail 2 "is in use by another process" -- "$BIN" train --resume run
check "  ... the first run is unharmed by the refused ones" kill -0 "$first"
kill -KILL "$first"
wait "$first" 2>/dev/null
last=$(newest_step run)
"$BIN" train --resume run --stop-at $((last + 2)) >resume.log 2>&1
check "after kill -9 of the holder the lock is free: --resume continues from step $last (exit $?)" \
  test -e "run/checkpoints/step_$(printf %08d $((last + 2))).json" || show resume.log

# --- SIGTERM during training -----------------------------------------------------------------------------------
"$BIN" train long.json --set out_dir="$S/term" >term.log 2>&1 &
pid=$!
for _ in $(seq 600); do grep -q '"step":10,' term/metrics.jsonl 2>/dev/null && break; sleep 0.1; done
kill -TERM "$pid"
wait "$pid"
rc=$?
check "SIGTERM during training exits 143 (got $rc)" test "$rc" -eq 143 || show term.log
check "  ... after writing a checkpoint" test -n "$(newest_step term)"
check "  ... and saying how to continue" grep -q "continue with: ssmax-gpt train --resume $S/term" term.log

# --- A file-size limit during a checkpoint write -----------------------------------------------------------------
last=$(newest_step run)
size_kb=$(($(stat -c %s "run/checkpoints/step_$(printf %08d "$last").pt") / 1024))
(
  ulimit -f $((size_kb / 2))
  exec "$BIN" train --resume run --stop-at $((last + 2))
) >fsize.log 2>&1
rc=$?
check "a checkpoint write past the file-size limit fails with exit 1 (got $rc)" test "$rc" -eq 1 || show fsize.log
check "  ... naming the checkpoint file and the reason" grep -q "step_$(printf %08d $((last + 2))).*File too large" \
  fsize.log || show fsize.log
check "  ... without a backtrace" no_backtrace fsize.log
check "  ... leaving no partial file" test -z "$(ls run/checkpoints | grep -v -e '^step_[0-9]*\.\(pt\|json\)$' -e '^latest$')"
check "  ... and the newest checkpoint is still step $last" test "$(newest_step run)" = "$last"
"$BIN" train --resume run --stop-at $((last + 2)) >fsize_resume.log 2>&1
check "  ... which resumes once there is room (exit $?)" \
  test -e "run/checkpoints/step_$(printf %08d $((last + 2))).json" || show fsize_resume.log
# A train.log that cannot grow is said once, not by spdlog's "[*** LOG ERROR ***]" line after every message.
(
  ulimit -f $(($(stat -c %s run/train.log) / 1024))
  exec "$BIN" train --resume run --stop-at $((last + 6))
) >logsize.log 2>&1
check "a train.log past the file-size limit is reported in one line" \
  test "$(grep -c 'the log file cannot be written' logsize.log)" -eq 1 || show logsize.log
check "  ... and spdlog's own LOG ERROR lines are not printed" test "$(grep -c 'LOG ERROR' logsize.log)" -eq 0

# --- SIGTERM during sweep: exit 143, the same command finishes -----------------------------------------------------
# The first run is long enough that the signal always lands in it; the rerun ends both a little after that step.
sweep() { "$BIN" sweep long.json --normalizers softmax,ssmax --set out_dir="$S/sweep" "$@"; }
"$BIN" sweep long.json --normalizers softmax,ssmax --set out_dir="$S/sweep" >sweep1.log 2>&1 &  # $! is the binary
pid=$!
for _ in $(seq 600); do grep -q '"step":10,' sweep/*/metrics.jsonl 2>/dev/null && break; sleep 0.1; done
kill -TERM "$pid"
wait "$pid"
rc=$?
check "SIGTERM during sweep exits 143 (got $rc)" test "$rc" -eq 143 || show sweep1.log
check "  ... saying how to continue" grep -q "sweep interrupted during .*; run the same command again" sweep1.log
stopped=$(newest_step sweep/normalizer=softmax)
sweep --set train.max_steps=$((stopped + 20)) >sweep2.log 2>&1
check "  ... and the same command finishes both runs (exit $?)" grep -q "2 runs (2 trained, 0 already finished)" \
  sweep2.log || show sweep2.log

# --- SIGTERM during prepare: no dataset that looks complete; the rerun rebuilds -------------------------------------
bash "$ROOT/scripts/generate_corpus.sh" big 10 3 >/dev/null || exit 1
cat >prep.json <<JSON
{"name": "prep", "out_dir": "run-prep", "threads": 1,
 "data": {"sources": ["big"], "dataset_dir": "cache-prep", "shard_tokens": 200000,
          "tokenizer": {"vocab_size": 512, "sample_mb": 1}},
 "model": {"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 32}}
JSON
"$BIN" prepare prep.json >prep1.log 2>&1 &
pid=$!
for _ in $(seq 600); do ls cache-prep/.tmp-*/train-000000.bin >/dev/null 2>&1 && break; sleep 0.1; done
kill -TERM "$pid"
wait "$pid"
rc=$?
check "SIGTERM stops prepare with 143 (got $rc)" test "$rc" -eq 143 || show prep1.log
check "  ... leaving no dataset that looks complete" test -z "$(find cache-prep -name meta.json)"
"$BIN" prepare prep.json >prep2.log 2>&1
check "  ... and the rerun builds it (exit $?)" test -n "$(find cache-prep -name meta.json ! -path '*/.tmp-*')" ||
  show prep2.log

# --- SIGTERM during eval: no result file that a later reader would trust -----------------------------------------
cat big/books/*.txt >long.txt
"$BIN" eval run --text long.txt --lengths 32 --batches 100000 --threads 1 --out "$S/eval" >eval.log 2>&1 &
pid=$!
for _ in $(seq 600); do grep -q "tokens to draw from" eval.log && break; sleep 0.1; done
sleep 0.3
kill -TERM "$pid"
wait "$pid"
rc=$?
check "SIGTERM stops eval mid-evaluation with 143 (got $rc)" test "$rc" -eq 143 || show eval.log
check "  ... leaving no eval.json" test ! -e eval/eval.json

# --- SIGTERM during needle: no needle.json -----------------------------------------------------------------------
"$BIN" train long.json --set out_dir="$S/rope" --set model.position=rope --set model.block_size=256 \
  --set train.max_steps=2 --set train.checkpoint_every=2 >rope.log 2>&1 || show rope.log
"$BIN" needle rope --lengths 250 --depths 0,0.5,1 --trials 100000 --show-prompts --threads 1 --out "$S/needle" \
  >needle.log 2>&1 &
pid=$!
for _ in $(seq 600); do grep -q -- "--- answer:" needle.log && break; sleep 0.1; done
kill -TERM "$pid"
wait "$pid"
rc=$?
check "SIGTERM stops needle mid-evaluation with 143 (got $rc)" test "$rc" -eq 143 || show needle.log
check "  ... leaving no needle.json" test ! -e needle/needle.json

# --- Killed while a file is being written ---------------------------------------------------------------------
# A FIFO where the command will put its temporary file (<name>.tmp.<pid>, the pid known through exec) holds the
# command in that open() until the signal comes: the moment is certain, not a race.
# cut_while_writing SIGNAL FILE LOG CMD...: runs CMD, sends SIGNAL once it waits on FILE's temporary file; sets rc.
# Job control (set -m) keeps SIGINT deliverable: without it a script's background job starts with SIGINT ignored.
cut_while_writing() {
  local signal=$1 file=$2 log=$3 temp
  shift 3
  set -m
  sh -c 'mkfifo "$1.tmp.$$" && shift && exec "$@"' sh "$file" "$@" >"$log" 2>&1 &
  pid=$!
  set +m
  temp="$file.tmp.$pid"
  # /proc/PID/wchan names the kernel function it sleeps in; a kernel that hides it shows "0", and then 5 s (the
  # commands here reach the open in under one) stand in for it.
  local i waiting=""
  for i in $(seq 600); do
    waiting=$(cat "/proc/$pid/wchan" 2>/dev/null)
    case "$waiting" in *fifo* | *pipe* | *partner*) break ;; esac
    [ "$waiting" = 0 ] && [ "$i" -ge 50 ] && break
    sleep 0.1
  done
  case "$waiting" in
    *fifo* | *pipe* | *partner*) ok "  (the command waits on $(basename "$temp"): $waiting)" ;;
    0) ok "  (the kernel hides where the command waits; sent after 5 s)" ;;
    *) fail "  the command never waited on $(basename "$temp") (wchan: '$waiting')" ;;
  esac
  kill "-$signal" "$pid"
  wait "$pid"
  rc=$?
  [ -e "$temp" ] && rm -f "$temp" && fail "  ... $temp was left behind"
}
no_temporary_files() { test -z "$(find "$@" -name '*.tmp.*')"; }

mkdir -p export
"$BIN" export run --out export/model.safetensors >export1.log 2>&1 || show export1.log
before=$(cksum export/model.safetensors export/model.config.json)
"$BIN" train --resume run --stop-at $(($(newest_step run) + 2)) >export-train.log 2>&1 || show export-train.log
# The description's temporary file is the FIFO, so the new weights are written (to their temporary file) by then.
cut_while_writing TERM export/model.config.json export2.log "$BIN" export run --out export/model.safetensors --force
check "SIGTERM during export --force exits 143 (got $rc)" test "$rc" -eq 143 || show export2.log
check "  ... the previous export is whole and unchanged" test "$before" = "$(cksum export/model.safetensors \
  export/model.config.json)"
check "  ... and no temporary file is left" no_temporary_files export
"$BIN" export run --out export/model.safetensors --force >export3.log 2>&1
check "  ... the same command then replaces both (exit $?)" test "$before" != "$(cksum export/model.safetensors \
  export/model.config.json)" || show export3.log

"$BIN" compare run term --out report >compare1.log 2>&1 || show compare1.log
cut_while_writing TERM report/summary.json compare2.log "$BIN" compare run term --out report
check "SIGTERM during compare exits 143 (got $rc)" test "$rc" -eq 143 || show compare2.log
check "  ... leaving no summary.json (written last, so a report without one is incomplete)" \
  test ! -e report/summary.json
check "  ... and no temporary file" no_temporary_files report

mkdir -p eval-int
cut_while_writing INT eval-int/eval.json eval-int.log "$BIN" eval run --lengths 32 --batches 2 --threads 1 --out eval-int
check "SIGINT (Ctrl-C) while eval writes its result exits 130 (got $rc)" test "$rc" -eq 130 || show eval-int.log
check "  ... leaving neither eval.json nor a temporary file" test -z "$(ls -A eval-int)"

# --- A file-size limit during a shard write ----------------------------------------------------------------------
sed 's/"shard_tokens": 200000/"shard_tokens": 4000000/; s/cache-prep/cache-fsize/' prep.json >prep-fsize.json
(
  ulimit -f 1500 # KiB: the tokenizer's 0.8 MB sample and its model fit, the ~4 MB train shard does not
  exec "$BIN" prepare prep-fsize.json
) >prep-fsize.log 2>&1
rc=$?
check "a shard write past the file-size limit fails with exit 1 (got $rc)" test "$rc" -eq 1 || show prep-fsize.log
check "  ... naming the shard and the reason" grep -q "train-000000.bin.*File too large" prep-fsize.log ||
  show prep-fsize.log
check "  ... without a backtrace" no_backtrace prep-fsize.log
check "  ... leaving no dataset, complete-looking or partial" test -z "$(ls -A cache-fsize 2>/dev/null)"
"$BIN" prepare prep-fsize.json >prep-fsize2.log 2>&1
check "  ... and the rerun builds it (exit $?)" test -n "$(find cache-fsize -name meta.json)" || show prep-fsize2.log

cli_test_finish
