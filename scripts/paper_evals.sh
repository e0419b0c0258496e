#!/usr/bin/env bash
# The paper's evaluations on the three tiny KJV runs of scripts/main_job.sh (run that first):
#   1. needle finetune of each run (the two-stage recipe below) into runs/kjv-tiny-<variant>-ft-needle,
#   2. long-context loss at 1×, 2×, 4×, 8× the training length, RoPE θ as trained and θ×50,
#      for the pretrained and the finetuned models,
#   3. the needle accuracy grid (length × depth) of the finetuned models,
#   4. the attention mass on the needle per layer and head, at the training length and at 8×.
# Everything lands under runs/kjv-tiny-evals/ (tables on stdout, JSON and PNG/SVG on disk).
#
#   bash scripts/paper_evals.sh [--short-steps N] [--steps N] [--evaluate-only] [--set KEY=VALUE ...]
#
# The recipe (answer-token loss, batch 8, AdamW):
#   stage 1  --short-steps (1500) steps on 64-token prompts at a constant lr 1e-3 (50 warm-up steps),
#            → runs/kjv-tiny-<variant>-ft-needle64. Short prompts make each step cheap; the copying
#            circuit appears only after several hundred steps (the answer loss sits at the chance level
#            7/9·ln 10 ≈ 1.79 until then), and a decaying lr stalled it in our trials.
#   stage 2  --steps (200) steps on 64-, 128- and 256-token prompts in turn (256 = the training length) at a
#            constant lr 3e-4 (20 warm-up steps), → runs/kjv-tiny-<variant>-ft-needle. Moving straight to
#            128/256-token prompts at lr 1e-3 undid stage 1 (answer loss back at chance) in our trial.
# One thread per finetune, all three variants at once: on a 2-core machine that beats one after another.
# --set arguments go to every finetune; --evaluate-only skips both stages and evaluates the newest
# checkpoint each -ft-needle run holds. Re-running resumes unfinished finetunes (same arguments) and
# repeats the deterministic evaluations.
set -euo pipefail
cd "$(dirname "$0")/.."
short_steps=1500 steps=200 finetune=1 extra=()
while (($#)); do
  case "$1" in
    --short-steps) short_steps=${2:?--short-steps needs a number}; shift 2 ;;
    --steps) steps=${2:?--steps needs a number}; shift 2 ;;
    --evaluate-only) finetune=0; shift ;;
    --set) extra+=("$1" "${2:?--set needs KEY=VALUE}"); shift 2 ;;
    *) echo "paper_evals.sh: unknown argument '$1' (allowed: --short-steps N, --steps N, --evaluate-only, --set KEY=VALUE)" >&2; exit 2 ;;
  esac
done
bin=./build/ssmax-gpt
variants=(softmax ssmax ssmax_bias)
out=runs/kjv-tiny-evals
lengths=256,512,1024,2048
for variant in "${variants[@]}"; do
  [[ -d "runs/kjv-tiny-${variant}/checkpoints" ]] || {
    echo "runs/kjv-tiny-${variant} has no checkpoints: run scripts/main_job.sh first" >&2
    exit 2
  }
done

# Both stages of one variant, one after the other.
finetune_variant() {
  local variant=$1 short="runs/kjv-tiny-$1-ft-needle64"
  "$bin" finetune "runs/kjv-tiny-${variant}" --task needle --lengths 64 --set out_dir="$short" \
    --set threads=1 --set train.max_steps="$short_steps" --set train.log_every=100 --set train.eval_every=500 \
    --set train.checkpoint_every=500 --set optim.lr=1e-3 --set optim.schedule=constant \
    --set optim.warmup_steps=50 "${extra[@]}" &&
    "$bin" finetune "$short" --task needle --lengths 64,128,256 --set out_dir="runs/kjv-tiny-${variant}-ft-needle" \
      --set threads=1 --set train.max_steps="$steps" --set train.log_every=20 --set train.eval_every=100 \
      --set train.checkpoint_every=100 --set optim.lr=3e-4 --set optim.schedule=constant \
      --set optim.warmup_steps=20 "${extra[@]}"
}

if ((finetune)); then
  echo "== needle finetune: ${short_steps} + ${steps} steps each (logs: runs/kjv-tiny-<variant>-finetune.out) =="
  pids=()
  for variant in "${variants[@]}"; do
    finetune_variant "$variant" >"runs/kjv-tiny-${variant}-finetune.out" 2>&1 &
    pids+=($!)
  done
  status=0
  for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
      echo "finetune of kjv-tiny-${variants[$i]} failed; see runs/kjv-tiny-${variants[$i]}-finetune.out" >&2
      status=1
    fi
  done
  ((status == 0)) || exit "$status"
fi
for variant in "${variants[@]}"; do
  run="runs/kjv-tiny-${variant}-ft-needle"
  [[ -d "$run/checkpoints" ]] || { echo "$run has no checkpoints: run without --evaluate-only first" >&2; exit 2; }
  echo "${variant}: $(grep "val answer loss" "$run/train.log" | tail -n 1 | sed -E 's/^\[[^]]*\] (\[info\] )?//')"
done

base=() tuned=()
for variant in "${variants[@]}"; do
  base+=("runs/kjv-tiny-${variant}")
  tuned+=("runs/kjv-tiny-${variant}-ft-needle")
done

echo
echo "== long-context loss, RoPE θ as trained =="
"$bin" eval "${base[@]}" "${tuned[@]}" --lengths "$lengths" --batches 8 --out "$out/loss-theta1"
echo
echo "== long-context loss, RoPE θ × 50 =="
"$bin" eval "${base[@]}" "${tuned[@]}" --lengths "$lengths" --batches 8 --rope-theta-scale 50 \
  --out "$out/loss-theta50"

echo
echo "== needle in a haystack (finetuned models) =="
"$bin" needle "${tuned[@]}" --lengths "$lengths" --depths 0,0.25,0.5,0.75,1 --trials 5 --out "$out/needle"

echo
echo "== attention on the needle =="
for variant in "${variants[@]}"; do
  for length in 256 2048; do
    echo "-- ${variant}, length ${length} --"
    "$bin" attention "runs/kjv-tiny-${variant}-ft-needle" --length "$length" --depth 0.5 --trials 5 \
      --out "$out/attention-${variant}-${length}"
  done
done
echo
echo "results: $out/ (loss-theta*/eval_loss.png, needle/*.png, attention-*/*.png)"
