#!/usr/bin/env bash
# The whole test suite: install what is missing, build, run every test (unit and command-line).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
rm -rf build/test-tmp
cd build
ctest -j2 --output-on-failure --timeout 900
