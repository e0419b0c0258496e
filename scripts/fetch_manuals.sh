#!/usr/bin/env bash
# Writes data/manuals.jsonl, the GPU study's corpus (studies/manuals-h100.json): ~84 MB of real English from four
# Debian packages that ship the text itself, one JSON Lines record ({"text", "source"}) per document:
#   linux-doc-6.1    the kernel's documentation, reStructuredText (Documentation/**/*.rst)     ~24 MB
#   python3.11-doc   the Python manuals' reStructuredText sources (html/_sources/**/*.txt)    ~11 MB
#   perl-doc         Perl's manual pages in POD (*.pod)                                        ~9 MB
#   dict-gcide       the GNU Collaborative International Dictionary of English (Webster's 1913 and
#                    additions), one record per headword entry                                ~40 MB
# ≈ 20 M tokens with the study's 16384-token BPE. The packages are downloaded and unpacked into data/packages/
# (apt-get download + dpkg-deb -x: nothing is installed system-wide, no dictionary server is started), not committed.
# Usage: bash scripts/fetch_manuals.sh        (idempotent: an existing complete data/manuals.jsonl is kept)
set -euo pipefail
cd "$(dirname "$0")/.."
out=data/manuals.jsonl
packages=(linux-doc-6.1 python3.11-doc perl-doc dict-gcide)
min_bytes=80000000  # the four packages of Debian 12 give ~84 MB of text; less means one is missing or changed

if [[ -f $out ]] && (($(stat -c %s "$out") >= min_bytes)); then
  echo "fetch_manuals: $out already present ($(stat -c %s "$out") bytes, $(wc -l <"$out") documents)"
  exit 0
fi
mkdir -p data/packages
for p in "${packages[@]}"; do
  [[ -d data/packages/$p ]] && continue
  deb_dir=$(mktemp -d data/packages/.download.XXXXXX)
  # apt-get download writes into the working directory; as root it warns that _apt cannot write there (harmless).
  if ! (cd "$deb_dir" && apt-get download "$p" >/dev/null 2>&1); then
    (cd "$deb_dir" && apt-get update -qq >/dev/null 2>&1 && apt-get download "$p") || {
      echo "fetch_manuals: cannot download Debian package $p (is a Debian 12 package source reachable?)" >&2
      rm -rf "$deb_dir"
      exit 1
    }
  fi
  dpkg-deb -x "$deb_dir"/"$p"_*.deb "$deb_dir/root"
  mv "$deb_dir/root" "data/packages/$p"
  rm -rf "$deb_dir"
done

tmp=$(mktemp data/.manuals.jsonl.XXXXXX)
trap 'rm -f "$tmp"' EXIT
python3 - "$tmp" <<'PY'
import glob, gzip, json, os, re, sys

out = open(sys.argv[1], "w", encoding="utf-8")
counts = {}

def emit(source, text):
    text = text.strip()
    if len(text) < 200:  # index stubs and empty pages: not prose
        return
    out.write(json.dumps({"text": text, "source": source}, ensure_ascii=False) + "\n")
    package = source.split(":", 1)[0]
    counts[package] = counts.get(package, 0) + len(text.encode("utf-8"))

def read(path):
    opener = gzip.open if path.endswith((".gz", ".dz")) else open  # dictzip is gzip
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        return f.read()

root = "data/packages"
for path in sorted(glob.glob(f"{root}/linux-doc-6.1/usr/share/doc/linux-doc-6.1/Documentation/**/*.rst.gz",
                             recursive=True)):
    emit("linux-doc-6.1:" + path.split("/Documentation/", 1)[1][:-3], read(path))
for path in sorted(glob.glob(f"{root}/python3.11-doc/usr/share/doc/python3.11/html/_sources/**/*.txt",
                             recursive=True)):
    emit("python3.11-doc:" + path.split("/_sources/", 1)[1], read(path))
for path in sorted(glob.glob(f"{root}/perl-doc/usr/**/*.pod", recursive=True)):
    emit("perl-doc:" + os.path.basename(path), read(path))
# The dictionary: dictd's format is the entries back to back, each starting at column 0 after a blank line; one
# record per page of consecutive entries (≥ 4 KB), as a printed dictionary's page.
dictionary = read(f"{root}/dict-gcide/usr/share/dictd/gcide.dict.dz")
page, pages = [], 0
for entry in re.split(r"\n\n(?=\S)", dictionary):
    page.append(entry)
    if sum(map(len, page)) >= 4096:
        emit(f"dict-gcide:page {pages}", "\n\n".join(page))
        page, pages = [], pages + 1
emit(f"dict-gcide:page {pages}", "\n\n".join(page))
out.close()
total = sum(counts.values())
print("fetch_manuals: " + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in counts.items()) + f"; {total / 1e6:.1f} MB")
PY
if (($(stat -c %s "$tmp") < min_bytes)); then
  echo "fetch_manuals: only $(stat -c %s "$tmp") bytes of text (expected ≥ $min_bytes): a package changed" >&2
  exit 1
fi
mv "$tmp" "$out"
trap - EXIT
echo "fetch_manuals: wrote $out ($(stat -c %s "$out") bytes, $(wc -l <"$out") documents)"
