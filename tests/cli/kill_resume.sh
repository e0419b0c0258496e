#!/usr/bin/env bash
# Short crash-safety torture for CI: 3 random SIGKILLs, each resumed, compared with an unbroken run.
# Usage: bash tests/cli/kill_resume.sh BINARY SCRATCH_DIR [PYTHON]
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cli_test_init "$@"
# kill_torture.sh empties the scratch directory itself: run it from outside, not from a directory it deletes.
cd "$S/.."
exec bash "$ROOT/scripts/kill_torture.sh" 3 "$S" "$BIN"
