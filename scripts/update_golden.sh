#!/usr/bin/env bash
# Rewrites tests/golden/tiny_losses.json from the current build. Deliberate only: run it when a change is meant
# to move the numbers (say why in the commit), never to make a failing golden test pass unexplained.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh ssmax-gpt ssmax_spm
source scripts/lib/env.sh
python=$SSMAX_TORCH_PYTHON
bash tests/cli/golden_loss.sh build/ssmax-gpt build/test-tmp/golden-update "$python" --update
git --no-pager diff --stat -- tests/golden/tiny_losses.json
