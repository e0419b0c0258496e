#!/usr/bin/env bash
# Writes data/kjv.txt, the default training corpus: the King James Bible (public domain) from
# Debian's bible-kjv package, one verse per line. The verse references ("Ge1:1 ", "1Chr2:3 ",
# "SSol1:1 ") are stripped: they are not language, yet with a 4096-token BPE they would be ~14 % of
# all tokens (171k of 1.21M), capacity a small model would spend on counting verses.
set -euo pipefail
cd "$(dirname "$0")/.."
out=data/kjv.txt
expected_lines=31102  # verses from Genesis 1:1 to Revelation 22:21

if ! command -v bible >/dev/null 2>&1; then
  echo "fetch_kjv: the 'bible' command (package bible-kjv) is missing: run scripts/setup.sh first" >&2
  exit 1
fi
if [[ -f $out ]] && [[ $(wc -l <"$out") -eq $expected_lines ]] && ! grep -qE '^[0-9]?[A-Za-z]+[0-9]+:[0-9]+ ' "$out"; then
  echo "fetch_kjv: $out already present ($(wc -c <"$out") bytes, $expected_lines lines)"
  exit 0
fi

mkdir -p data
tmp=$(mktemp "data/.kjv.txt.XXXXXX")
trap 'rm -f "$tmp"' EXIT
bible -f "Genesis 1:1-Revelation 22:21" | sed -E 's/^[0-9]?[A-Za-z]+[0-9]+:[0-9]+ //' >"$tmp"
lines=$(wc -l <"$tmp")
if [[ $lines -ne $expected_lines ]]; then
  echo "fetch_kjv: expected $expected_lines verses from 'bible', got $lines; is bible-kjv complete?" >&2
  exit 1
fi
if grep -qE '^[0-9]?[A-Za-z]+[0-9]+:[0-9]+ ' "$tmp"; then
  echo "fetch_kjv: some verse references were not stripped; the 'bible' output format changed" >&2
  exit 1
fi
chmod 644 "$tmp"
mv "$tmp" "$out"
trap - EXIT
echo "fetch_kjv: wrote $out ($(wc -c <"$out") bytes, $lines lines)"
