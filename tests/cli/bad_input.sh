#!/usr/bin/env bash
# End-to-end: bad input as a user types it. Each case checks the exit code (2 usage/config error,
# 1 runtime failure), that stderr is exactly one line naming the offending key or file, and that no
# C++ exception, abort or backtrace leaks out.
# Usage: bash tests/cli/bad_input.sh BINARY SCRATCH_DIR [PYTHON]
set -u
source "$(dirname "$0")/lib/common.sh"
cli_test_init "$@"

checksum() { cksum "$@" 2>&1; }

# Bad configs are the tiny config with one edit (a sed expression) each.
cycled_corpus >"$S/corpus.txt"
CFG="$S/tiny.json"
write_tiny_config "$CFG"

# --- Config errors: exit 2, before any work ----------------------------------------------------------
expect_fail 2 "$S/missing.json" -- "$BIN" train "$S/missing.json"
expect_fail 2 "$S/missing.json" -- "$BIN" prepare "$S/missing.json"

printf '{\n  "name": "x",\n  "seed": ,\n  "threads": 1\n}\n' >"$S/syntax.json"
expect_fail 2 "$S/syntax.json:3:" -- "$BIN" train "$S/syntax.json"

write_tiny_config "$S/unknown.json" 's/"n_layer": 1/"n_layers": 1/'
expect_fail 2 "model.n_layers" -- "$BIN" train "$S/unknown.json"
grep -qF "model.n_layer'" "$S/err.txt" || fail "unknown key: no suggestion of model.n_layer: $(cat "$S/err.txt")"
expect_fail 2 "optim.lr" -- "$BIN" train "$CFG" --set train.lr=0.1

write_tiny_config "$S/type.json" 's/"n_layer": 1/"n_layer": "one"/'
expect_fail 2 "model.n_layer" -- "$BIN" train "$S/type.json"
write_tiny_config "$S/type2.json" 's/"batch_size": 4/"batch_size": 4.5/'
expect_fail 2 "train.batch_size" -- "$BIN" train "$S/type2.json"
expect_fail 2 "model.bias" -- "$BIN" train "$CFG" --set model.bias=1

write_tiny_config "$S/range.json" 's/"lr": 0.001/"lr": 0/'
expect_fail 2 "optim.lr" -- "$BIN" train "$S/range.json"
expect_fail 2 "model.dropout" -- "$BIN" train "$CFG" --set model.dropout=1.0
expect_fail 2 "train.batch_size" -- "$BIN" train "$CFG" --set train.batch_size=-1
expect_fail 2 "softmax|ssmax|ssmax_bias" -- "$BIN" train "$CFG" --set model.attention.normalizer=foo

write_tiny_config "$S/heads.json" 's/"n_head": 2/"n_head": 3/'
expect_fail 2 "n_head" -- "$BIN" train "$S/heads.json"
expect_fail 2 "KEY=VALUE" -- "$BIN" train "$CFG" --set model.n_layer

# --- Bad data sources: exit 2 ----------------------------------------------------------------------
expect_fail 2 "$S/no-such-corpus.txt" -- "$BIN" train "$CFG" --set "data.sources=$S/no-such-corpus.txt" \
  --set "out_dir=$S/run-missing-source"
expect_fail 2 "$S/no-such-corpus.txt" -- "$BIN" prepare "$CFG" --set "data.sources=$S/no-such-corpus.txt"
: >"$S/empty.txt"
expect_fail 2 "$S/empty.txt" -- "$BIN" train "$CFG" --set "data.sources=$S/empty.txt" --set "out_dir=$S/run-empty"
expect_fail 2 "$S/empty.txt" -- "$BIN" prepare "$CFG" --set "data.sources=$S/empty.txt"

# --- Unwritable out_dir: a path under a regular file --------------------------------------------------
expect_fail 2 "$S/corpus.txt/run" -- "$BIN" train "$CFG" --set "out_dir=$S/corpus.txt/run"

# --- A real run, then an out_dir that already holds a different run ----------------------------------
expect_ok "$BIN" train "$CFG"
[ -f "$S/run/config.json" ] && [ -f "$S/run/metrics.jsonl" ] || fail "tiny run left no config.json/metrics.jsonl"
before=$(checksum "$S/run/config.json" "$S/run/metrics.jsonl" "$S/run/train.log")
expect_fail 2 "$S/run" -- "$BIN" train "$CFG" --set model.n_layer=2
grep -qF "model.n_layer" "$S/err.txt" || fail "different run: message does not name model.n_layer: $(cat "$S/err.txt")"
after=$(checksum "$S/run/config.json" "$S/run/metrics.jsonl" "$S/run/train.log")
[ "$before" = "$after" ] || fail "refused run still changed the existing run's files: $before / $after"
ls "$S/run/checkpoints"/* >/dev/null 2>&1 || fail "existing checkpoints are gone"

# A start that failed on a bad source does not claim its out_dir: fixed, the same out_dir works.
expect_ok "$BIN" train "$CFG" --set "out_dir=$S/run-missing-source"

# --- Options that were quietly replaced by a default, or accepted out of range (issue 16) ---------------------
# An empty --text once evaluated the run's validation split instead, exiting 0 with a wrong-but-plausible loss.
expect_fail 2 "$S/empty.txt" -- "$BIN" eval "$S/run" --text "$S/empty.txt" --lengths 16 --threads 1 --out "$S/eval-empty"
[ -e "$S/eval-empty" ] && fail "eval of an empty --text wrote $S/eval-empty"
expect_fail 2 "--top-k -3" -- "$BIN" generate "$S/run" --prompt "In the" --top-k -3 --threads 1

# --- Corrupt prepared data: exit 1 naming the file ----------------------------------------------------
dataset=$(ls -d "$S/cache"/*/ 2>/dev/null | head -1)
dataset=${dataset%/}
if [ -z "$dataset" ] || [ ! -f "$dataset/train-000000.bin" ] || [ ! -f "$dataset/val-000000.bin" ]; then
  fail "no prepared dataset with train-000000.bin/val-000000.bin under $S/cache"
else
  cp "$dataset/train-000000.bin" "$S/train.bin.good"
  cp "$dataset/val-000000.bin" "$S/val.bin.good"

  printf 'NOTASHRD' | dd of="$dataset/train-000000.bin" bs=1 seek=0 conv=notrunc status=none
  expect_fail 1 "$dataset/train-000000.bin" -- "$BIN" train "$CFG" --set "out_dir=$S/run-bad-header"
  cp "$S/train.bin.good" "$dataset/train-000000.bin"

  size=$(wc -c <"$S/val.bin.good")
  truncate -s $((size - 100)) "$dataset/val-000000.bin"
  expect_fail 1 "$dataset/val-000000.bin" -- "$BIN" train "$CFG" --set "out_dir=$S/run-truncated"
  cp "$S/val.bin.good" "$dataset/val-000000.bin"

  # Header bytes 24..27: the vocabulary the ids were encoded with (little-endian); 301 != 300.
  printf '\055\001\000\000' | dd of="$dataset/train-000000.bin" bs=1 seek=24 conv=notrunc status=none
  expect_fail 1 "vocabulary mismatch" -- "$BIN" train "$CFG" --set "out_dir=$S/run-vocab"
  grep -qF "train-000000.bin" "$S/err.txt" || fail "vocab mismatch: message does not name train-000000.bin: $(cat "$S/err.txt")"
  cp "$S/train.bin.good" "$dataset/train-000000.bin"

  # Restored, the dataset is good again.
  expect_ok "$BIN" train "$CFG" --set "out_dir=$S/run-restored"
fi

cli_test_finish
