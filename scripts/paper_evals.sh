#!/usr/bin/env bash
# The paper's evaluations on the three tiny KJV runs of scripts/main_job.sh (run that first):
#   1. needle finetune of each run (the two-stage recipe below) into runs/kjv-tiny-<variant>-ft-needle,
#   2. long-context loss at 1×, 2×, 4×, 8× the training length, RoPE θ as trained and θ×50,
#      for the pretrained and the finetuned models,
#   3. the needle accuracy grid (length × depth) of the finetuned models,
#   4. the attention mass on the needle per layer and head, at the training length and at 8×.
# Everything lands under runs/kjv-tiny-evals/ (tables on stdout, JSON and PNG/SVG on disk).
#
#   bash scripts/paper_evals.sh [--repeat-steps N] [--steps N] [--evaluate-only] [--set KEY=VALUE ...]
#
# The recipe (batch 8, AdamW, constant lr 1e-3 after 20 warm-up steps, one thread per finetune):
#   stage 1  --repeat-steps (300) steps of `finetune --task repeat --lengths 256 --lm-weight 1`: a window of
#            training text holding a random 7-digit number, followed by the same window; loss on the second
#            copy plus the language-model loss on the first → runs/kjv-tiny-<variant>-ft-repeat. The 150-step
#            pretrained models have no induction heads (their loss on repeated text does not drop in the
#            second copy), and the KJV has no digits, so their digit embeddings are nearly equal (cosine 0.97):
#            this grows the heads and teaches the digits apart.
#   stage 2  --steps (250) steps of `finetune --task needle --lengths 256 --lm-weight 1` from stage 1: needle
#            prompts at the training length, loss on the answer tokens plus the language-model loss on the
#            prompt (which keeps the models language models) → runs/kjv-tiny-<variant>-ft-needle.
# All three variants finetune at once, one thread each: on a 2-core machine that beats one after another.
# --set arguments go to every finetune; --evaluate-only skips both stages and evaluates the newest
# checkpoint each -ft-needle run holds. Re-running resumes unfinished finetunes (same arguments) and
# repeats the deterministic evaluations.
set -euo pipefail
cd "$(dirname "$0")/.."
repeat_steps=300 steps=250 finetune=1 extra=()
while (($#)); do
  case "$1" in
    --repeat-steps) repeat_steps=${2:?--repeat-steps needs a number}; shift 2 ;;
    --steps) steps=${2:?--steps needs a number}; shift 2 ;;
    --evaluate-only) finetune=0; shift ;;
    --set) extra+=("$1" "${2:?--set needs KEY=VALUE}"); shift 2 ;;
    *) echo "paper_evals.sh: unknown argument '$1' (allowed: --repeat-steps N, --steps N, --evaluate-only, --set KEY=VALUE)" >&2; exit 2 ;;
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
  local variant=$1 repeat="runs/kjv-tiny-$1-ft-repeat"
  local common=(--lengths 256 --lm-weight 1 --set threads=1 --set train.log_every=25 --set train.eval_every=50
    --set train.eval_batches=4 --set train.checkpoint_every=50 --set optim.lr=1e-3 --set optim.schedule=constant
    --set optim.warmup_steps=20)
  "$bin" finetune "runs/kjv-tiny-${variant}" --task repeat "${common[@]}" --set out_dir="$repeat" \
    --set train.max_steps="$repeat_steps" "${extra[@]}" &&
    "$bin" finetune "$repeat" --task needle "${common[@]}" --set out_dir="runs/kjv-tiny-${variant}-ft-needle" \
      --set train.max_steps="$steps" "${extra[@]}"
}

if ((finetune)); then
  echo "== finetune: ${repeat_steps} repeat + ${steps} needle steps each (logs: runs/kjv-tiny-<variant>-finetune.out) =="
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
last_line() { grep "$1" "$2/train.log" | tail -n 1 | sed -E 's/^\[[^]]*\] (\[info\] )?//'; }
for variant in "${variants[@]}"; do
  run="runs/kjv-tiny-${variant}-ft-needle"
  [[ -d "$run/checkpoints" ]] || { echo "$run has no checkpoints: run without --evaluate-only first" >&2; exit 2; }
  [[ -f "runs/kjv-tiny-${variant}-ft-repeat/train.log" ]] &&
    echo "${variant} repeat: $(last_line "val copy loss by" "runs/kjv-tiny-${variant}-ft-repeat")"
  echo "${variant} needle: $(last_line "val answer loss by" "$run")"
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
