#!/usr/bin/env bash
# Every C++ file of the repository is as clang-format (the repository's .clang-format, clang-format 14) writes it:
# formatting is checked in CI, not left to whoever touches a file next.
# Usage: bash tests/cli/format.sh BINARY SCRATCH_DIR [PYTHON]   (the arguments every CLI test gets; unused here)
set -u
source "$(dirname "$0")/lib/common.sh"
cli_test_init "$@"

formatter=$(command -v clang-format-14 || command -v clang-format || true)
[ -n "$formatter" ] || fail "clang-format is not installed (scripts/test.sh installs clang-14's tools)"
cd "$ROOT" || fail "cannot enter $ROOT"
mapfile -t files < <(git ls-files '*.cpp' '*.h' 2>/dev/null || find src tests -name '*.cpp' -o -name '*.h')
check "there are C++ files to check" test "${#files[@]}" -gt 100
"$formatter" --dry-run -Werror "${files[@]}" >"$S/format.txt" 2>&1
check "clang-format finds nothing to change (run: clang-format-14 -i FILE)" test ! -s "$S/format.txt" ||
  { grep -E "^[^ ].*(warning|error):" "$S/format.txt" | cut -d: -f1 | sort | uniq -c | sed 's/^/    /'; }

cli_test_finish
