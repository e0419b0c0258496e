#!/usr/bin/env bash
# Short crash-safety torture for CI: 3 random SIGKILLs, each resumed, compared with an unbroken run.
set -euo pipefail
bin=$1
work=$2
exec bash "$(dirname "$0")/../../scripts/kill_torture.sh" 3 "$work" "$bin"
