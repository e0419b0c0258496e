#!/usr/bin/env bash
# The main job: install what is missing, build, fetch the King James Bible, prepare it, then train
# the three tiny configs (softmax, SSMax, SSMax+bias) one after another, print their results and
# write a comparison report (table printed, plots under runs/kjv-tiny-report/).
# Re-running skips finished runs and resumes interrupted ones. Pass --set KEY=VALUE arguments to change all three runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/lib/env.sh
bash scripts/build.sh ssmax-gpt ssmax_spm
bash scripts/fetch_kjv.sh
./build/ssmax-gpt prepare configs/kjv-tiny-softmax.json

variants=(softmax ssmax ssmax_bias)
for variant in "${variants[@]}"; do
  echo "== training kjv-tiny-${variant} =="
  run="runs/kjv-tiny-${variant}"
  if compgen -G "$run/checkpoints/step_*.json" >/dev/null; then
    ./build/ssmax-gpt train --resume "$run" "$@"  # finishes an interrupted run; a finished one returns at once
  else
    ./build/ssmax-gpt train "configs/kjv-tiny-${variant}.json" "$@"
  fi
done

runs=("${variants[@]/#/runs/kjv-tiny-}")
echo
echo "== comparison report =="
# The training loss is logged every 10 steps (15 points a curve), the validation loss every 50 (3 points): the curve
# to look at first is the training one.
./build/ssmax-gpt compare "${runs[@]}" --metric train_loss --out runs/kjv-tiny-report/train
./build/ssmax-gpt compare "${runs[@]}" --out runs/kjv-tiny-report
echo "plots: runs/kjv-tiny-report/train/loss.png (training loss curves), runs/kjv-tiny-report/loss.png (validation"
echo "       loss), runs/kjv-tiny-report/s.png, b.png (SSMax's s and b per layer); each also as .svg"

echo
echo "== final validation loss (runs/kjv-tiny-report/summary.json) =="
"$SSMAX_TORCH_PYTHON" - runs/kjv-tiny-report/summary.json <<'PY'
import json, sys
for v in json.load(open(sys.argv[1]))["variants"]:
    run = v["runs"][0]
    print(f"{v['name']:<24} val_loss {v['final']['mean']:.4f} at step {run['last_step']}")
PY
