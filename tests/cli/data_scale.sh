#!/usr/bin/env bash
# Data at scale: a generated ~50 MB corpus over 40 files (plain text, JSON Lines, gzip of both) prepared with
# bounded memory, interrupted and rerun, found again without a rebuild, and trained on across many shards.
#  - peak resident memory of `prepare` (measured by the parent with getrusage, not reported by the program) grows by
#    less than 40 MB from a 5 MB to a 50 MB corpus: nothing in it is proportional to the corpus;
#  - SIGINT mid-build leaves no dataset that looks complete; the rerun removes the leftover, rebuilds, and gets the
#    same fingerprint as an uninterrupted build;
#  - unchanged sources are found by size and modification time; touched ones by content, without re-encoding;
#  - `train` reads windows across a dataset of many shards.
# The token stream itself is checked against an in-memory encoding in tests/test_prepare_stream.cpp.
# Usage: bash tests/cli/data_scale.sh BINARY SCRATCH_DIR PYTHON
set -u
source "$(dirname "$0")/lib/common.sh"
cli_test_init --python "$@"

fingerprint() { "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["fingerprint"])' "$1"/meta.json; }
dataset_of() { find "$1" -mindepth 1 -maxdepth 1 -type d ! -name '.*' | head -1; }

bash "$ROOT/scripts/generate_corpus.sh" corpus 50 5 || exit 1
bash "$ROOT/scripts/generate_corpus.sh" small 5 6 || exit 1
config() {  # config NAME SOURCE DATASET_DIR
  cat >"$1.json" <<JSON
{"name": "$1", "out_dir": "run-$1", "threads": 2,
 "data": {"sources": ["$2"], "dataset_dir": "$3", "shard_tokens": 2000000,
          "tokenizer": {"vocab_size": 2048, "sample_mb": 4}},
 "model": {"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 64},
 "train": {"batch_size": 4, "max_steps": 3, "eval_every": 3, "eval_batches": 2, "log_every": 1}}
JSON
}
config small small cache-small
config big corpus cache-big
config cut corpus cache-cut

small_mb=$(peak_mb "$BIN" prepare small.json 2>small.log | tail -1)
big_mb=$(peak_mb "$BIN" prepare big.json 2>big.log | tail -1)
echo "      peak resident memory of prepare: $small_mb MB for 5 MB, $big_mb MB for 50 MB of text"
check "prepare of 50 MB succeeds" test -n "$big_mb" -a -f "$(dataset_of cache-big)/meta.json"
check "memory does not grow with the corpus (+$((big_mb - small_mb)) MB from 5 to 50 MB, limit 40)" \
  test $((big_mb - small_mb)) -lt 40
check "progress is reported in MB/s with an ETA" grep -q "MB/s, ETA" big.log
big=$(dataset_of cache-big)
shards=$(ls "$big"/train-*.bin | wc -l)
check "the train split is in many shards ($shards)" test "$shards" -ge 5
check "no copy of the corpus in the cache ($(du -sm "$big" | cut -f1) MB)" test ! -e "$big/corpus.txt" -a \
  "$(du -sm "$big" | cut -f1)" -lt 30

# Interrupted: SIGINT (Ctrl-C) once the first shard is on disk, then a rerun. Job control on: a background job of a
# script would otherwise ignore SIGINT.
set -m
"$BIN" prepare cut.json >cut1.log 2>&1 &
pid=$!
set +m
for _ in $(seq 600); do ls cache-cut/.tmp-*/train-000000.bin >/dev/null 2>&1 && break; sleep 0.1; done
kill -INT $pid
wait $pid
rc=$?
check "SIGINT stops prepare (exit $rc)" test $rc -ne 0
check "an interrupted build leaves no dataset" test -z "$(dataset_of cache-cut)"
"$BIN" prepare cut.json >cut2.log 2>&1
check "the rerun succeeds" test $? -eq 0
check "the rerun removes the interrupted build and says so" grep -q "interrupted build" cut2.log
check "no leftovers after the rerun" test -z "$(ls -d cache-cut/.tmp-* 2>/dev/null)"
check "the rerun equals an uninterrupted build" test "$(fingerprint "$(dataset_of cache-cut)")" = "$(fingerprint "$big")"

# Found again: by size and modification time; after `touch`, by content (the first pass only, no encoding).
"$BIN" prepare big.json >again.log 2>&1
check "unchanged sources: cached without reading them" grep -q "sources unchanged in size and modification time" again.log
touch corpus/books/0000.txt
"$BIN" prepare big.json >touched.log 2>&1
check "touched sources: found by content" grep -q "contents are unchanged" touched.log
check "touched sources: not encoded again" bash -c "! grep -q encoding touched.log"

"$BIN" train big.json >train.log 2>&1
check "train runs on the many-shard dataset" test $? -eq 0 -a -f run-big/metrics.jsonl
[[ $failed -eq 0 ]] || show big.log cut1.log cut2.log touched.log train.log
cli_test_finish
