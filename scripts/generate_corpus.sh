#!/usr/bin/env bash
# Writes a synthetic corpus of about MB megabytes under OUT_DIR, in every source form `prepare` reads:
# plain text (books/*.txt), JSON Lines (web/*.jsonl, text in "text" plus other fields, escapes and UTF-8 in it)
# and gzip-compressed versions of both (*.txt.gz, *.jsonl.gz). Words are drawn log-uniformly from a vocabulary of
# 6,000 made-up words, so a BPE tokenizer has real work to do. Same arguments, same machine: same bytes.
#
#   scripts/generate_corpus.sh OUT_DIR MB [SEED]      e.g. scripts/generate_corpus.sh /tmp/corpus 50
#
# Used by tests/cli/data_scale.sh (~50 MB) and scripts/bench_prepare.sh (GBs). 40 files of ~MB/40 each (at most 64 MB each: more files for more MB).
set -euo pipefail
if [[ $# -lt 2 || ! "$2" =~ ^[0-9]+$ || "$2" -lt 1 ]]; then
  echo "usage: $0 OUT_DIR MB [SEED]   (MB: a whole number >= 1)" >&2
  exit 2
fi
out=$1 total_mb=$2 seed=${3:-1}
per_file_kb=$(( (total_mb * 1000 + 39) / 40 ))
(( per_file_kb > 64000 )) && per_file_kb=64000
files=$(( (total_mb * 1000 + per_file_kb - 1) / per_file_kb ))
mkdir -p "$out/books" "$out/web"

# generate KIND INDEX BYTES: one file's text on stdout (KIND: txt or jsonl).
generate() {
  awk -v kind="$1" -v index_="$2" -v bytes="$3" -v seed="$seed" 'BEGIN {
    srand(seed * 100003 + index_)
    split("ka re mi no su ta le vo ri an el os ur in de fa gu ho", syl, " ")
    nwords = 6000
    for (i = 1; i <= nwords; i++) {
      n = 1 + int(rand() * 3); w = ""
      for (j = 0; j < n; j++) w = w syl[1 + int(rand() * 18)]
      word[i] = w
    }
    word[7] = "caf\303\251"; word[11] = "na\303\257ve"; word[13] = "\316\273\317\214\316\263\316\277\317\202"
    written = 0; doc = 0
    while (written < bytes) {
      paragraphs = 1 + int(rand() * 4); text = ""
      for (p = 0; p < paragraphs; p++) {
        sentences = 2 + int(rand() * 6)
        for (s = 0; s < sentences; s++) {
          len = 4 + int(rand() * 14); line = ""
          for (k = 0; k < len; k++) line = line (k ? " " : "") word[int(nwords ^ rand())]
          if (rand() < 0.1) line = line ", " int(rand() * 100000)
          text = text toupper(substr(line, 1, 1)) substr(line, 2) (rand() < 0.15 ? "? " : ". ")
        }
        text = text (kind == "jsonl" ? "\\n" : "\n")
      }
      if (kind == "jsonl") {
        if (rand() < 0.2) text = "\\\"Quoted\\\" \\u00e9t\\u00e9\\ttab " text
        rec = "{\"id\": " doc ", \"text\": \"" text "\", \"source\": \"gen-" index_ "\"}"
        print rec; written += length(rec) + 1
      } else {
        printf "%s\n", text; written += length(text) + 1
      }
      doc++
    }
  }'
}
export -f generate
export seed

for ((i = 0; i < files; i++)); do
  case $((i % 4)) in
    0) echo "generate txt $i $((per_file_kb * 1000)) > '$out/books/$(printf %04d $i).txt'" ;;
    1) echo "generate jsonl $i $((per_file_kb * 1000)) > '$out/web/$(printf %04d $i).jsonl'" ;;
    2) echo "generate txt $i $((per_file_kb * 1000)) | gzip -1 > '$out/books/$(printf %04d $i).txt.gz'" ;;
    3) echo "generate jsonl $i $((per_file_kb * 1000)) | gzip -1 > '$out/web/$(printf %04d $i).jsonl.gz'" ;;
  esac
done | xargs -P "$(nproc)" -I{} bash -c '{}'
echo "$0: wrote $files files (~$per_file_kb kB of text each) under $out: $(du -sh "$out" | cut -f1) on disk" >&2
