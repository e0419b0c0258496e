#!/usr/bin/env bash
# The main job: install what is missing, build, fetch the King James Bible, prepare it, then train
# the three tiny configs (softmax, SSMax, SSMax+bias) one after another, print their results and
# write a comparison report (table printed, plots under runs/kjv-tiny-report/).
# Re-running skips finished runs and resumes interrupted ones. Pass --set KEY=VALUE arguments to change all three runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
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

echo
echo "== final validation loss (runs/kjv-tiny-*/metrics.jsonl) =="
for variant in "${variants[@]}"; do
  metrics="runs/kjv-tiny-${variant}/metrics.jsonl"
  # The last record with a val_loss is the final evaluation.
  line=$(grep '"val_loss":[0-9]' "$metrics" | tail -n 1)
  val=$(sed -E 's/.*"val_loss":([0-9.eE+-]+).*/\1/' <<<"$line")
  step=$(sed -E 's/.*"step":([0-9]+).*/\1/' <<<"$line")
  printf '%-12s val_loss %.4f at step %s\n' "$variant" "$val" "$step"
done

echo
echo "== comparison report =="
# The training loss is logged every 10 steps (15 points a curve), the validation loss every 50 (3 points): the curve
# to look at first is the training one.
./build/ssmax-gpt compare runs/kjv-tiny-softmax runs/kjv-tiny-ssmax runs/kjv-tiny-ssmax_bias --metric train_loss \
  --out runs/kjv-tiny-report/train
./build/ssmax-gpt compare runs/kjv-tiny-softmax runs/kjv-tiny-ssmax runs/kjv-tiny-ssmax_bias \
  --out runs/kjv-tiny-report
echo "plots: runs/kjv-tiny-report/train/loss.png (training loss curves), runs/kjv-tiny-report/loss.png (validation"
echo "       loss), runs/kjv-tiny-report/s.png, b.png (SSMax's s and b per layer); each also as .svg"
