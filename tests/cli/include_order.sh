#!/usr/bin/env bash
# The layering of src/ (docs/architecture.md, "Rooms and arrows"): no #include runs up the documented order of rooms,
# and every folder of src/ is a room of that order — so a new upward include, or a room the order does not know,
# fails CI rather than growing a cycle.
# Usage: bash tests/cli/include_order.sh BINARY SCRATCH_DIR [PYTHON]   (the arguments every CLI test gets; unused here)
set -u
source "$(dirname "$0")/lib/common.sh"
cli_test_init "$@"

check_layers() {  # check_layers SRC_DIR: prints each include that runs upward, or each unknown room; fails on any
  python3 - "$1" <<'PY'
import os, re, sys
# Bottom first; rooms in one entry are one layer and may include each other.
order = [["util"], ["config"], ["run"], ["data", "kernels"], ["model", "report"], ["dist"], ["train"],
         ["eval", "export"], ["study"], ["cli"]]
layer = {room: i for i, rooms in enumerate(order) for room in rooms}
src, bad = sys.argv[1], []
for room in sorted(os.listdir(src)):
    if not os.path.isdir(os.path.join(src, room)):
        continue
    if room not in layer:
        bad.append(f"src/{room}/: a folder the order in docs/architecture.md does not name")
        continue
    for base, _, files in os.walk(os.path.join(src, room)):
        for name in sorted(files):
            if not name.endswith((".cpp", ".h")):
                continue
            path = os.path.join(base, name)
            for number, line in enumerate(open(path, encoding="utf-8"), 1):
                m = re.match(r'\s*#\s*include\s+"([a-z_]+)/', line)
                if m and m.group(1) in layer and layer[m.group(1)] > layer[room]:
                    bad.append(f"{os.path.relpath(path, os.path.dirname(src))}:{number}: {room}/ includes "
                               f"{m.group(1)}/, a room above it")
for line in bad:
    print(line)
sys.exit(1 if bad else 0)
PY
}

check "no include in src/ runs up the order of rooms" check_layers "$ROOT/src"

# The check itself catches what it is for: an upward include and an unknown room in a copy of the tree.
mkdir -p "$S/tree/src/util" "$S/tree/src/train" "$S/tree/src/export"
echo '#include "export/hf_import.h"' >"$S/tree/src/train/trainer.cpp"
echo '#include "train/trainer.h"' >"$S/tree/src/export/hf_import.cpp"
check_layers "$S/tree/src" >"$S/found.txt"
check "an upward include is found, naming file, line and rooms" \
  grep -qx "src/train/trainer.cpp:1: train/ includes export/, a room above it" "$S/found.txt" || show "$S/found.txt"
check "a downward include is not" test "$(wc -l <"$S/found.txt")" -eq 1
mkdir -p "$S/tree/src/hf"
check_layers "$S/tree/src" >"$S/found.txt"
check "a room the order does not know is found" grep -q "src/hf/: a folder the order" "$S/found.txt"

cli_test_finish
