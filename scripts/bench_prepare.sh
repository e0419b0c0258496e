#!/usr/bin/env bash
# Prepare at scale, next to sentencepiece's own command-line encoder.
#
#   scripts/bench_prepare.sh [MB] [SCRATCH]        default: 5000 MB under /tmp/ssmax-bench-prepare
#
# 1. writes a synthetic corpus of MB megabytes (scripts/generate_corpus.sh: plain, JSON Lines, gzip of both);
# 2. `ssmax-gpt prepare` on it (vocabulary 4096, default settings) — wall time, peak resident memory (measured by
#    the parent with getrusage), text MB/s, the cache's size on disk;
# 3. what a user would otherwise script: the text extracted (zcat, JSON field; timed apart), then `spm_encode` with the
#    same model, one process per file on every core (`xargs -P`), ids written as text — wall time and peak memory.
# Needs the build (scripts/build.sh); installs Debian's `sentencepiece` (spm_encode) when missing.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
mb=${1:-5000}
scratch=${2:-/tmp/ssmax-bench-prepare}
bin=${SSMAX_BIN:-$here/build/ssmax-gpt}
source "$here/scripts/lib/env.sh"
py=$SSMAX_TORCH_PYTHON
[[ -x $bin ]] || { echo "$0: $bin not built (run scripts/build.sh)" >&2; exit 2; }
command -v spm_encode >/dev/null || install_missing_packages sentencepiece >/dev/null
# measure LABEL CMD...: runs CMD, prints wall seconds and peak RSS of its largest process.
measure() {
  local label=$1; shift
  "$py" - "$label" "$@" <<'PY'
import resource, subprocess, sys, time
t = time.time()
rc = subprocess.run(sys.argv[2:]).returncode
print(f"{sys.argv[1]}: exit {rc}, {time.time() - t:.1f} s, peak RSS {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MB", flush=True)
sys.exit(rc)
PY
}

mkdir -p "$scratch"
cd "$scratch"
[[ -f corpus.done-$mb ]] || { rm -rf corpus; bash "$here/scripts/generate_corpus.sh" corpus "$mb"; touch "corpus.done-$mb"; }
stored=$(du -sb corpus | cut -f1)
echo "corpus: $(find corpus -type f | wc -l) files, $((stored / 1000000)) MB as stored, ~$mb MB of text; $(nproc) cores"
cat > bench.json <<JSON
{"data": {"sources": ["corpus"], "dataset_dir": "cache"}}
JSON
rm -rf cache
measure "ssmax-gpt prepare" "$bin" prepare bench.json 2>&1 | tee prepare.log | grep -v "ETA" || true
dataset=$(find cache -mindepth 1 -maxdepth 1 -type d ! -name '.*' | head -1)
echo "cache: $(du -sm "$dataset" | cut -f1) MB on disk ($(ls "$dataset"/*.bin | wc -l) shard files)"

# The same text as plain files, for spm_encode: the extraction a user would script first, timed on its own.
rm -rf text ids && mkdir -p text ids
cat > extract.sh <<'SH'
set -e
py=$1
find corpus -type f | sort | while read -r f; do
  out=text/$(echo "$f" | tr / _).txt
  case $f in
    *.jsonl.gz) zcat "$f" | "$py" -c 'import json,sys; [sys.stdout.write(json.loads(l)["text"]) for l in sys.stdin if l.strip()]' >"$out" ;;
    *.jsonl) "$py" -c 'import json,sys; [sys.stdout.write(json.loads(l)["text"]) for l in sys.stdin if l.strip()]' <"$f" >"$out" ;;
    *.gz) zcat "$f" >"$out" ;;
    *) cp "$f" "$out" ;;
  esac
done
SH
measure "text extraction (zcat, JSON field; one process)" bash extract.sh "$py"
echo "text for spm_encode: $(( $(du -sb text | cut -f1) / 1000000 )) MB"
measure "spm_encode x $(nproc) processes" bash -c "ls text/*.txt | xargs -P $(nproc) -I{} sh -c 'spm_encode --model=$dataset/tokenizer.model --output_format=id < {} > ids/\$(basename {}).ids'"
echo "spm_encode output: $(du -sm ids | cut -f1) MB of ids as text"
