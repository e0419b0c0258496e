#!/usr/bin/env bash
# Writes data/kjv-chapters.jsonl: the King James Bible (Debian's bible-kjv) as 1,189 documents, one JSON Lines
# record per chapter ({"text": its verses, one per line, "book": "Ge", "chapter": 1}): a many-document corpus of
# real text for packed-document training (model.attention.document_mask; studies/kjv-documents.json). Verse
# references are stripped from the text as in scripts/fetch_kjv.sh and kept as the record's book and chapter.
set -euo pipefail
cd "$(dirname "$0")/.."
out=data/kjv-chapters.jsonl
expected_chapters=1189
PYTHON=${PYTHON:-python3}

if ! command -v bible >/dev/null 2>&1; then
  echo "fetch_kjv_chapters: the 'bible' command (package bible-kjv) is missing: run scripts/setup.sh first" >&2
  exit 1
fi
if [[ -f $out ]] && [[ $(wc -l <"$out") -eq $expected_chapters ]]; then
  echo "fetch_kjv_chapters: $out already present ($(wc -c <"$out") bytes, $expected_chapters chapters)"
  exit 0
fi

mkdir -p data
tmp=$(mktemp "data/.kjv-chapters.jsonl.XXXXXX")
trap 'rm -f "$tmp"' EXIT
bible -f "Genesis 1:1-Revelation 22:21" | "$PYTHON" -c '
import json, re, sys
verse = re.compile(r"^([0-9]?[A-Za-z]+)([0-9]+):[0-9]+ (.*)$")
chapter, lines = None, []
def flush():
    if chapter:
        print(json.dumps({"text": "\n".join(lines) + "\n", "book": chapter[0], "chapter": chapter[1]}))
for line in sys.stdin:
    m = verse.match(line.rstrip("\n"))
    if not m:
        sys.exit(f"fetch_kjv_chapters: a line without a verse reference: {line[:60]!r}")
    key = (m.group(1), int(m.group(2)))
    if key != chapter:
        flush()
        chapter, lines = key, []
    lines.append(m.group(3))
flush()
' >"$tmp"
chapters=$(wc -l <"$tmp")
if [[ $chapters -ne $expected_chapters ]]; then
  echo "fetch_kjv_chapters: expected $expected_chapters chapters from 'bible', got $chapters; is bible-kjv complete?" >&2
  exit 1
fi
chmod 644 "$tmp"
mv "$tmp" "$out"
trap - EXIT
echo "fetch_kjv_chapters: wrote $out ($(wc -c <"$out") bytes, $chapters chapters)"
