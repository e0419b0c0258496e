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
# A number beyond a double escaped as a library exception (found by tests/fuzz/fuzz_study.cpp).
printf '{"name": "x", "optim": {"lr": 1e999}}' >"$S/overflow.json"
expect_fail 2 "$S/overflow.json: invalid JSON: number overflow parsing '1e999'" -- "$BIN" train "$S/overflow.json"

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

# The audit of every subcommand's options: values outside their range (NaN passes CLI11's ranges), inputs that were
# quietly ignored or replaced (--b without ssmax_bias, --text ""), inputs counted twice, outputs that would fail
# only after the work.
E=("$BIN" eval "$S/run" --lengths 16 --batches 1 --threads 1)
expect_fail 2 "--b applies only together with --normalizer ssmax_bias" -- "${E[@]}" --b 0.5
expect_fail 2 "--b applies only together with --normalizer ssmax_bias" -- "${E[@]}" --normalizer ssmax --b 0.5
# The inference-only scalings and their parameters, on every evaluation command.
expect_fail 2 "--attn-scale applies only together with --normalizer llama4" -- "${E[@]}" --normalizer logn \
  --attn-scale 0.2
expect_fail 2 "--scaled-layers sideways: expected all or nope" -- "${E[@]}" --normalizer llama4 --scaled-layers sideways
expect_fail 2 "--logn-length 1: must be >= 2" -- "${E[@]}" --normalizer logn --logn-length 1
expect_fail 2 "--scaled-layers nope: every layer of" -- "${E[@]}" --normalizer llama4 --scaled-layers nope
expect_fail 2 "--normalizer alibi is not allowed: expected one of softmax, ssmax, ssmax_bias, logn, llama4" -- \
  "$BIN" generate "$S/run" --prompt "In the" --normalizer alibi --threads 1
expect_fail 2 "--text: empty path" -- "${E[@]}" --text ""
expect_fail 2 "--rope-theta 0: must be a finite number > 0" -- "${E[@]}" --rope-theta 0
expect_fail 2 "--rope-theta-scale nan: must be a finite number > 0" -- "${E[@]}" --rope-theta-scale nan
expect_fail 2 "--s inf: must be a finite number in [-100, 100]" -- "${E[@]}" --normalizer ssmax --s inf
expect_fail 2 "checkpoints: $S/run/ is given twice" -- "${E[@]}" "$S/run/"
expect_fail 2 "--out $S/corpus.txt: exists and is not a directory" -- "${E[@]}" --out "$S/corpus.txt"
expect_fail 2 "runs: $S/./run is given twice" -- "$BIN" compare "$S/run" "$S/./run" --out "$S/compare-twice"
expect_fail 2 "--temperature nan: must be a finite number >= 0" -- "$BIN" generate "$S/run" --prompt "the" \
  --temperature nan --threads 1
expect_fail 2 "--device gpu: expected auto, cpu, cuda or cuda:N" -- "$BIN" needle "$S/run" --lengths 64 --device gpu
expect_fail 2 "--lengths 0: must be a positive length" -- "$BIN" needle "$S/run" --lengths 0 --threads 1
# Read in another base or wrapped around by CLI11 (0256 is octal 174, -1 an unsigned 2^64-1), given twice, or ignored.
expect_fail 2 "'0256' is not a decimal number" -- "$BIN" needle "$S/run" --lengths 64,0256 --threads 1
expect_fail 2 "'-1' is not a decimal number" -- "$BIN" generate "$S/run" --prompt "the" --seed -1 --threads 1
expect_fail 2 "'0x10' is not a decimal number" -- "$BIN" attention "$S/run" --length 16 --seed 0x10 --threads 1
expect_fail 2 "--lengths: 16 is given twice" -- "$BIN" eval "$S/run" --lengths 16,32,16 --batches 1 --threads 1
expect_fail 2 "--depths: 0.5 is given twice" -- "$BIN" needle "$S/run" --lengths 64 --depths 0.5,0.5 --threads 1
expect_fail 2 "--top-k 5 has no effect with --temperature 0" -- "$BIN" generate "$S/run" --prompt "the" \
  --temperature 0 --top-k 5 --threads 1
expect_ok "$BIN" generate "$S/run" --prompt "the" --temperature 0 --max-new-tokens 2 --threads 1
expect_fail 2 "--threads -3: must be in [0, 1024]" -- "$BIN" attention "$S/run" --length 16 --threads -3
expect_fail 2 "--precision fp16: expected fp32 or bf16" -- "$BIN" eval "$S/run" --lengths 16 --precision fp16
expect_fail 2 "--peak-tflops nan: must be a finite number >= 0" -- "$BIN" bench "$CFG" --peak-tflops nan
expect_fail 2 "--profile $S: is a directory" -- "$BIN" bench "$CFG" --profile "$S"
expect_fail 2 "--profile $CFG: would overwrite the config" -- "$BIN" bench "$CFG" --profile "$CFG"
expect_fail 2 "--steps 0: must be a finite number >= 1" -- "$BIN" bench "$CFG" --steps 0
expect_fail 2 "--normalizers: softmax is given twice" -- "$BIN" bench "$CFG" --normalizers softmax,softmax
expect_fail 2 "sofmax" -- "$BIN" bench "$CFG" --normalizers sofmax
expect_fail 2 "--vary seed: expected KEY=V1,V2" -- "$BIN" sweep "$CFG" --vary seed
expect_fail 2 "--seeds: 1 is given twice" -- "$BIN" sweep "$CFG" --seeds 1,1
expect_fail 2 "--lengths -4: must be a positive length" -- "$BIN" finetune "$S/run" --task repeat --lengths -4 \
  --set "out_dir=$S/ft-negative"
run_expect 2 "$BIN" finetune "$S/run" --stop-at -5 --set "out_dir=$S/ft-stop"
grep -qF -- "--stop-at" "$S/err.txt" || fail "finetune --stop-at -5: the error does not name --stop-at"
expect_fail 2 "--stop-at 2: $S/run/checkpoints/step_00000004.pt is already at step 4; give a later step" -- \
  "$BIN" train --resume "$S/run" --stop-at 2
SW=("$BIN" sweep "$CFG" --set "out_dir=$S/sweep-refused")
expect_fail 2 "--seeds: 1 is given twice; give each value once" -- "${SW[@]}" --seeds 1,1
expect_fail 2 "--normalizers: ssmax is given twice" -- "${SW[@]}" --normalizers ssmax,ssmax
expect_fail 2 "swept key (--normalizers is model.attention.normalizer, --seeds is seed): seed is given twice" -- \
  "${SW[@]}" --vary seed=1,2 --seeds 3
expect_fail 2 "--vary out_dir: the sweep names each run" -- "${SW[@]}" --vary out_dir=a,b
expect_fail 2 "--set model.attention.normalizer=ssmax: model.attention.normalizer is also swept" -- \
  "${SW[@]}" --normalizers softmax,ssmax --set model.attention.normalizer=ssmax
expect_fail 2 "--normalizers: empty list" -- "${SW[@]}" --normalizers ""
[ -e "$S/sweep-refused" ] && fail "a refused sweep made $S/sweep-refused"

# Checked against every checkpoint's data before the first model is loaded: each once failed mid-run, after the
# earlier checkpoints' work, or (compare) quietly left the run out.
printf 'the lord said\n' >"$S/short.txt"
expect_fail 2 "--text $S/short.txt: 11 tokens with the tokenizer of $S/run/checkpoints/step_00000004.pt, fewer \
than one window at --lengths 16 (17 tokens)" -- "$BIN" eval "$S/run" --text "$S/short.txt" --lengths 16 --threads 1
expect_ok "$BIN" train "$CFG" --set model.position=rope --set model.block_size=160 --set "out_dir=$S/rope"
expect_fail 2 "--lengths 100000: the validation split of $S/rope/checkpoints/step_00000004.pt holds" -- \
  "$BIN" eval "$S/rope" --lengths 100000 --threads 1
expect_fail 2 "--lengths 40: too short for the needle" -- "$BIN" needle "$S/rope" --lengths 40 --threads 1
expect_fail 2 "$S/run/checkpoints/step_00000004.pt uses learned positions (block_size 32)" -- \
  "$BIN" needle "$S/rope" "$S/run" --lengths 140 --threads 1 --out "$S/needle-mixed"
[ -e "$S/needle-mixed" ] && fail "needle evaluated $S/rope before refusing $S/run"
expect_fail 2 "--length 40: too short for the needle" -- "$BIN" attention "$S/rope" --length 40 --threads 1
expect_fail 2 "--depth nan: must be a finite number in [0, 1]" -- "$BIN" attention "$S/rope" --length 140 --depth nan
expect_fail 2 "--jobs excludes --report-only" -- "$BIN" study "$S/any-study.json" --jobs 2 --report-only
mkdir -p "$S/dir.safetensors"
expect_fail 2 "$S/dir.safetensors: exists and is not a regular file" -- \
  "$BIN" export "$S/run" --out "$S/dir.safetensors" --force
expect_fail 2 "compare: $S/runz: no such run directory" -- "$BIN" compare "$S/run" "$S/runz" --out "$S/compare-typo"
[ -e "$S/compare-typo" ] && fail "a refused compare made $S/compare-typo"

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
