#!/usr/bin/env bash
# Every relative link of the documentation (README.md, docs/*.md, data/README.md) names a file or directory that
# exists and, with a #anchor, a heading of that Markdown file (GitHub's anchors: lower case, punctuation dropped,
# spaces to hyphens, -1, -2 … for repeats). Links inside code blocks and code spans are not links.
# Usage: bash tests/cli/doc_links.sh BINARY SCRATCH_DIR [PYTHON]   (the binary is unused; python3 reads the files)
set -u
source "$(dirname "$0")/lib/common.sh"
cli_test_init "$@"

python=$(command -v python3 || true)
[ -n "$python" ] || python=$PY
[ -n "$python" ] || fail "no python3 to read the Markdown files"

cat >"$S/doc_links.py" <<'EOF'
import os, re, sys

root = sys.argv[1]
files = ["README.md", "data/README.md"] + sorted(
    os.path.join("docs", f) for f in os.listdir(os.path.join(root, "docs")) if f.endswith(".md"))

def prose_lines(path):
    """(line number, text) of the lines outside fenced code blocks, code spans blanked."""
    fence = None
    with open(os.path.join(root, path), encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            stripped = line.lstrip()
            marker = re.match(r"(`{3,}|~{3,})", stripped)
            if marker:
                if fence is None:
                    fence = marker.group(1)[0] * len(marker.group(1))
                elif stripped.startswith(fence):
                    fence = None
                continue
            if fence is None:
                yield number, re.sub(r"`+[^`]*`+", "``", line)

def anchors(path):
    seen, result, fence = {}, set(), None
    with open(os.path.join(root, path), encoding="utf-8") as f:
        for line in f:
            stripped = line.lstrip()
            marker = re.match(r"(`{3,}|~{3,})", stripped)
            if marker:
                fence = marker.group(1) if fence is None else (None if stripped.startswith(fence) else fence)
                continue
            heading = None if fence else re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
            if not heading:
                continue
            text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.group(1))
            slug = re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            result.add(slug if count == 0 else f"{slug}-{count}")
    return result

links = bad = 0
for path in files:
    for number, line in prose_lines(path):
        for target in re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", line):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: …: not checked here
                continue
            links += 1
            file_part, _, anchor = target.partition("#")
            resolved = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
            where = f"{path}:{number}: {target}"
            if not os.path.exists(os.path.join(root, resolved)):
                print(f"{where}: no file {resolved}")
                bad += 1
            elif anchor and resolved.endswith(".md") and anchor not in anchors(resolved):
                print(f"{where}: {resolved} has no heading with the anchor #{anchor}")
                bad += 1
print(f"{links} relative links in {len(files)} files, {bad} broken")
sys.exit(1 if bad else 0)
EOF

"$python" "$S/doc_links.py" "$ROOT" >"$S/links.txt" 2>&1
check "every relative link of README.md, docs/*.md and data/README.md resolves" test $? -eq 0 || show "$S/links.txt"
check "the check found links to check" grep -Eq '^[1-9][0-9]* relative links' "$S/links.txt"

# The check itself: a broken file link and a broken anchor are found.
mkdir -p "$S/tree/docs" "$S/tree/data"
printf '# T\n\n## A heading, with `code`\n\n[ok](#a-heading-with-code) [gone](docs/missing.md)\n' >"$S/tree/README.md"
printf '# P\n\n[self](#p) [up](../README.md#a-heading-with-code) [nope](../README.md#no-such-heading)\n```\n[in code](nowhere.md)\n```\n' >"$S/tree/docs/p.md"
printf '# data\n' >"$S/tree/data/README.md"
"$python" "$S/doc_links.py" "$S/tree" >"$S/planted.txt" 2>&1
check "a planted tree with two broken links fails" test $? -ne 0
check "the missing file is named" grep -q 'README.md:5: docs/missing.md: no file' "$S/planted.txt" || show "$S/planted.txt"
check "the missing anchor is named" grep -q 'no heading with the anchor #no-such-heading' "$S/planted.txt" ||
  show "$S/planted.txt"
check "only those two" grep -q '2 broken' "$S/planted.txt" || show "$S/planted.txt"

cli_test_finish
