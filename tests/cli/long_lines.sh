#!/usr/bin/env bash
# Hostile line lengths in `prepare`, memory measured from outside (peak resident memory, getrusage of the parent):
#  - one JSON Lines record of 2 MB without a newline among 80 ordinary ones, and a plain text file that is one 2 MB
#    line, are prepared in the memory of the same text in ordinary lines (+ less than 40 MB): long lines are cut into
#    pieces of at most 128 KiB before a space (data/corpus_split.h), and sentencepiece never sees a whole one;
#  - a JSON Lines record over 64 MiB is refused (exit 2) naming its file and line, while it is read, not parsed.
# That the pieces' tokens are the whole line's is checked in tests/test_long_lines.cpp.
# Usage: bash tests/cli/long_lines.sh BINARY SCRATCH_DIR PYTHON
set -u
source "$(dirname "$0")/lib/common.sh"
cli_test_init --python "$@"

# words BYTES SEED: about BYTES of made-up words separated by spaces, no newline.
words() {
  awk -v n="$1" -v seed="$2" 'BEGIN {
    srand(seed); split("ka re mi no su ta le vo ri an el os ur in de fa gu ho", s, " ")
    for (out = 0; out < n; out += length(w) + 1) { w = s[1 + int(rand() * 18)] s[1 + int(rand() * 18)]; printf "%s ", w }
  }'
}
record() { printf '{"text": "%s"}\n' "$1"; }
config() {  # config NAME SOURCE
  cat >"$1.json" <<JSON
{"name": "$1", "out_dir": "run-$1", "threads": 2,
 "data": {"sources": ["$2"], "dataset_dir": "cache-$1", "tokenizer": {"vocab_size": 1000, "sample_mb": 1}}}
JSON
}

mkdir -p ordinary huge one-line refused
for i in $(seq 80); do record "$(words 2000 "$i")"; done >ordinary.part
words 2000000 99 >big.txt
cp ordinary.part ordinary/records.jsonl
fold -w 2000 -s big.txt | while IFS= read -r line; do record "$line"; done >>ordinary/records.jsonl
{ head -40 ordinary.part; record "$(cat big.txt)"; tail -40 ordinary.part; } >huge/records.jsonl
cp big.txt one-line/book.txt
config ordinary ordinary
config huge huge
config one-line one-line

declare -A peak
for name in ordinary huge one-line; do
  start=$(date +%s%N)
  out=$(peak_mb "$BIN" prepare "$name.json" 2>"$name.log")
  rc=$?
  peak[$name]=$(tail -1 <<<"$out")
  echo "      prepare $name: exit $rc, peak ${peak[$name]} MB, $((($(date +%s%N) - start) / 1000000)) ms"
  check "prepare $name succeeds" test "$rc" -eq 0 || show "$name.log"
done
for name in huge one-line; do
  check "$name: peak memory within 40 MB of the same text in ordinary lines (${peak[$name]} vs ${peak[ordinary]} MB)" \
    test "$((peak[$name] - peak[ordinary]))" -lt 40
done

# Over the limit: refused while reading, before a parse would take several times its size.
{ head -1 ordinary.part; printf '{"text": "'; head -c $((65 << 20)) /dev/zero | tr '\0' a; printf '"}\n'; } \
  >refused/records.jsonl
config refused refused
out=$(peak_mb timeout 120 "$BIN" prepare refused.json 2>refused.log)
rc=$?
mb=$(tail -1 <<<"$out")
check "a record over 64 MiB: exit 2 ($rc)" test "$rc" -eq 2 || show refused.log
check "  ... naming its file and line and the limit" \
  grep -qF "refused/records.jsonl:2: a JSON Lines record longer than 64 MiB" refused.log || show refused.log
check "  ... on one line, without a backtrace" no_backtrace refused.log
check "  ... before it is parsed (peak $mb MB, ordinary text ${peak[ordinary]} MB)" test "$((mb - peak[ordinary]))" -lt 300
check "  ... leaving no dataset" test -z "$(ls -A cache-refused 2>/dev/null)"

cli_test_finish
