#!/usr/bin/env bash
# End-to-end: damaged and mismatched files, one table row per case. Each row damages a fresh copy of a finished
# run (or, restored afterwards, the prepared dataset, or a config), runs the command a user would, and checks the
# exit code, the message (a fixed string; one line, no backtrace) and that no file the user owns changed. Rows
# where the right answer is to carry on (a damaged newest checkpoint in a run directory) check that instead.
# Usage: bash tests/cli/damaged_files.sh BINARY SCRATCH_DIR [PYTHON]
set -u
source "$(dirname "$0")/lib/common.sh"
cli_test_init "$@"

triplet_corpus >"$S/corpus.txt"
write_tiny_config "$S/tiny.json" 's/"max_steps": 4/"max_steps": 6/'
"$BIN" train tiny.json >train.log 2>&1 || { fail "the run to damage did not train"; show train.log; cli_test_finish; }
write_tiny_config "$S/wide.json" 's/"max_steps": 4/"max_steps": 6/; s/"n_embd": 32/"n_embd": 48/; s|/run"|/wide"|'
"$BIN" train wide.json >wide.log 2>&1 || fail "the wider run did not train"
DATASET=$(ls -d "$S"/cache/*/ | head -1)
DATASET=${DATASET%/}
CK=checkpoints/step_00000006
EVAL=(eval --lengths 16 --batches 1 --threads 1 --out "$S/eval-out")

snapshot() { (cd "$1" && find . -type f ! -name run.lock -print0 | sort -z | xargs -0 cksum); }
fresh() { rm -rf "$S/c" && cp -a "$S/run" "$S/c"; }  # the case's own copy of the run: $S/c
flip_byte() { # flip_byte FILE OFFSET
  local byte
  byte=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  printf "\\$(printf %03o $((byte ^ 0x5a)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
half() { truncate -s $(($(stat -c %s "$1") / 2)) "$1"; }

# row NAME CODE PATTERN WATCHED_DIR -- CMD...: CMD exits CODE with PATTERN on its single stderr line (lines matching
# $ROW_WARNINGS, if set, may come before it) and leaves every file under WATCHED_DIR as it was.
row() {
  local name=$1 code=$2 pattern=$3 watched=$4 before after rc lines problems=()
  shift 5
  before=$(snapshot "$watched")
  timeout 60 "$@" >"$S/out.txt" 2>"$S/err.txt"
  rc=$?
  after=$(snapshot "$watched")
  lines=$(grep -v -e "${ROW_WARNINGS:-^$}" "$S/err.txt" | grep -c .)
  [ "$rc" -eq "$code" ] || problems+=("exit code $rc, expected $code")
  [ "$lines" -eq 1 ] || problems+=("stderr has $lines lines, expected 1")
  grep -qF -- "$pattern" "$S/err.txt" || problems+=("stderr does not say '$pattern'")
  no_backtrace "$S/err.txt" "$S/out.txt" || problems+=("a backtrace or uncaught exception")
  [ "$before" = "$after" ] || problems+=("files under $watched changed")
  if [ ${#problems[@]} -eq 0 ]; then
    ok "$name [$code]"
  else
    fail "$name"
    for p in "${problems[@]}"; do echo "      - $p"; done
    sed 's/^/      stderr| /' "$S/err.txt" | head -5
  fi
}

# --- Checkpoints named explicitly: refused, naming the file ----------------------------------------------------
fresh && half c/$CK.pt
row "truncated checkpoint" 1 "c/$CK.pt: checkpoint is corrupted or truncated" c -- "$BIN" "${EVAL[@]}" c/$CK.pt
fresh && flip_byte c/$CK.pt 5000
row "bit-flipped checkpoint" 1 "c/$CK.pt: checkpoint is corrupted or truncated" c -- "$BIN" "${EVAL[@]}" c/$CK.pt
fresh && : >c/$CK.pt
row "empty checkpoint" 1 "c/$CK.pt: checkpoint is corrupted or truncated" c -- "$BIN" "${EVAL[@]}" c/$CK.pt
fresh && printf 'trailing' >>c/$CK.pt
row "checkpoint with bytes appended" 1 "checkpoint is corrupted or truncated" c -- "$BIN" "${EVAL[@]}" c/$CK.pt
fresh && rm c/$CK.json
row "checkpoint without its manifest" 1 "no manifest step_00000006.json beside it" c -- "$BIN" "${EVAL[@]}" c/$CK.pt
fresh && half c/$CK.json
row "truncated manifest" 1 "c/$CK.json: checkpoint manifest is not valid JSON with bytes and hash" c -- \
  "$BIN" "${EVAL[@]}" c/$CK.pt
fresh && echo '[]' >c/$CK.json
row "manifest that is not an object" 1 "checkpoint manifest is not valid JSON with bytes and hash" c -- \
  "$BIN" "${EVAL[@]}" c/$CK.pt
fresh && sed -i 's/"hash":"\(.\)/"hash":"x/' c/$CK.json
row "manifest with another hash" 1 "checkpoint is corrupted or truncated" c -- "$BIN" "${EVAL[@]}" c/$CK.pt

# --- Run directories ----------------------------------------------------------------------------------------------
fresh && rm c/config.json
row "run directory without config.json" 2 "c: not a run directory (no config.json)" c -- "$BIN" "${EVAL[@]}" c
fresh && for f in c/checkpoints/step_*.pt; do half "$f"; done
ROW_WARNINGS="skipping bad checkpoint: c/checkpoints/step_0000000[46].pt" row "every checkpoint damaged" 1 "c: no valid checkpoint to resume from" c -- "$BIN" train --resume c
fresh && cp "$S/wide/$CK.pt" c/checkpoints/step_00000008.pt && cp "$S/wide/$CK.json" c/checkpoints/step_00000008.json
sed -i 's/"step":6/"step":8/' c/checkpoints/step_00000008.json
row "another run's checkpoint (another model shape) copied in" 1 "written by a model of another shape (model.n_embd)" \
  c -- "$BIN" train --resume c
fresh && rm -rf c/checkpoints
row "run directory whose checkpoints are gone" 1 "c: no valid checkpoint to resume from" c -- "$BIN" train --resume c
# Carrying on is right here: `latest` is a pointer for people; the manifests decide.
fresh && echo step_99999999.pt >c/checkpoints/latest
"$BIN" train --resume c --set train.max_steps=7 >latest.log 2>&1
check "'latest' pointing nowhere: --resume still finds step 6 (exit $?)" grep -q "resumed c from c/$CK.pt" latest.log ||
  show latest.log
fresh && half c/$CK.pt
"$BIN" train --resume c --set train.max_steps=8 >fallback.log 2>&1
rc=$?
check "damaged newest checkpoint in a run directory: --resume skips it, names it, continues (exit $rc)" \
  grep -q "skipping bad checkpoint: c/$CK.pt" fallback.log || show fallback.log
check "  ... from step 4 to step 8" test -e c/checkpoints/step_00000008.json -a "$rc" -eq 0

# --- The prepared dataset: refused naming the file, restored afterwards -------------------------------------------
damage_dataset() {  # damage_dataset FILE HOW: backs FILE up, then damages it (HOW: half, flip, empty, remove)
  cp "$1" "$S/backup" && BACKED_UP=$1
  case $2 in half) half "$1" ;; flip) flip_byte "$1" 2 ;; empty) : >"$1" ;; remove) rm "$1" ;; esac
}
restore_dataset() { cp "$S/backup" "$BACKED_UP"; }
TRAIN=("$BIN" train tiny.json --set out_dir="$S/new")
damage_dataset "$DATASET/train-000000.bin" half
row "truncated token shard" 1 "$DATASET/train-000000.bin" "$DATASET" -- "${TRAIN[@]}"
restore_dataset
damage_dataset "$DATASET/val-000000.bin" flip
row "token shard with a damaged header" 1 "$DATASET/val-000000.bin" "$DATASET" -- "${TRAIN[@]}"
restore_dataset
damage_dataset "$DATASET/train-000000.bin" none
printf '\055\001\000\000' | dd of="$DATASET/train-000000.bin" bs=1 seek=24 conv=notrunc status=none
row "token shard from another tokenizer" 1 "vocabulary mismatch" "$DATASET" -- "${TRAIN[@]}"
restore_dataset
# A damaged cache entry is rebuilt from the sources, saying so, into the same dataset (same fingerprint).
fingerprint=$(grep -o '"fingerprint": "[0-9a-f]*"' "$DATASET/meta.json")
damage_dataset "$DATASET/meta.json" half
"$BIN" prepare tiny.json >rebuild.log 2>&1
check "truncated dataset meta.json: prepare rebuilds the dataset (exit $?)" \
  grep -q "$DATASET was incomplete or damaged (no readable meta.json): replaced by this build" rebuild.log ||
  show rebuild.log
check "  ... into the same dataset (same fingerprint)" grep -qF "$fingerprint" "$DATASET/meta.json"
damage_dataset "$DATASET/tokenizer.model" half
row "truncated tokenizer model" 1 "$DATASET/tokenizer.model: not a usable sentencepiece model" "$DATASET" -- \
  "$BIN" generate "$S/run" --prompt "alpha" --max-new-tokens 2 --threads 1
restore_dataset
damage_dataset "$DATASET/tokenizer.model" remove
row "missing tokenizer model" 1 "$DATASET/tokenizer.model" "$DATASET" -- \
  "$BIN" generate "$S/run" --prompt "alpha" --max-new-tokens 2 --threads 1
restore_dataset
rm -rf "$S/new"

# --- Files named on the command line ------------------------------------------------------------------------------
mkdir "$S/dir.json"
row "config that is a directory" 2 "$S/dir.json: is a directory; give a config file" "$S/c" -- "$BIN" train "$S/dir.json"
mkfifo "$S/fifo.json"
row "config that is a FIFO (not read, so no hang)" 2 "$S/fifo.json: is not a regular file" "$S/c" -- \
  "$BIN" train "$S/fifo.json"
: >"$S/empty.json"
row "empty config" 2 "$S/empty.json" "$S/c" -- "$BIN" train "$S/empty.json"
sed 's/"seed": 1,/"seed": 1, "seed": 2,/' tiny.json >dup.json
row "config with a duplicate key" 2 "dup.json: key 'seed' appears twice" "$S/c" -- "$BIN" train dup.json
row "study file that is a FIFO" 2 "$S/fifo.json: is not a regular file" "$S/c" -- "$BIN" study "$S/fifo.json"
# compare takes many runs (often a glob): one whose metrics are damaged is left out, by name, not the whole report.
fresh && sed -i '2s/.*/{"step": 2, "train_loss": oops}/' c/metrics.jsonl
"$BIN" compare c "$S/run" --out "$S/compare-out" >compare.log 2>&1
check "metrics.jsonl with a damaged line: compare leaves that run out, naming file and line (exit $?)" \
  grep -q "c/metrics.jsonl:2: not a metrics record; run skipped" compare.log || show compare.log

cli_test_finish
