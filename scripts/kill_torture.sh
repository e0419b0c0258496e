#!/usr/bin/env bash
# Crash-safety torture: train a small model while killing it with SIGKILL at random moments
# (mid-step, mid-checkpoint), resuming after every kill, then check that the result is bit-identical
# to an uninterrupted run: same metrics at every step and byte-identical exported weights.
#
#   bash scripts/kill_torture.sh [KILLS=20] [WORKDIR=build/torture] [BINARY=build/ssmax-gpt]
#
# CI runs a short version (tests/cli/kill_resume.sh, 3 kills); run ~50 kills to soak it.
set -euo pipefail
kills=${1:-20}
work=${2:-build/torture}
bin=${3:-build/ssmax-gpt}
rm -rf "$work"
mkdir -p "$work"

# Deterministic text: a small grammar, no randomness, ~150 KB.
awk 'BEGIN {
  split("the king|a shepherd|the people|my brother|the prophet|a stranger|the elders", s, "|");
  split("went up to|spake unto|looked upon|came unto|departed from|built", v, "|");
  split("the city|the mountain|the temple|the river|the house of the lord|the gate", o, "|");
  for (i = 0; i < 3000; i++) printf "%s %s %s, and it was day %d.\n", s[i%7+1], v[(i*3)%6+1], o[(i*5)%6+1], i%9+1;
}' > "$work/corpus.txt"
cat > "$work/config.json" <<JSON
{
  "name": "torture", "seed": 3, "threads": 1, "device": "cpu", "cpu_blas": "aten",
  "data": {"sources": ["$work/corpus.txt"], "dataset_dir": "$work/cache", "tokenizer": {"vocab_size": 320},
           "val_fraction": 0.1},
  "model": {"n_layer": 2, "n_head": 2, "n_embd": 64, "block_size": 64, "dropout": 0.1, "position": "rope",
            "attention": {"normalizer": "ssmax_bias"}},
  "optim": {"lr": 3e-3, "warmup_steps": 10},
  "train": {"batch_size": 8, "max_steps": 240, "log_every": 5, "eval_every": 40, "eval_batches": 2,
            "checkpoint_every": 7, "keep_last": 2}
}
JSON

"$bin" prepare "$work/config.json" 2>/dev/null
start=$(date +%s%N)
"$bin" train "$work/config.json" --set out_dir="$work/reference" 2>/dev/null
reference_seconds=$(awk -v ns=$(($(date +%s%N) - start)) 'BEGIN { printf "%.2f", ns / 1e9 }')
echo "torture: uninterrupted reference run took ${reference_seconds}s"

run="$work/tortured"
done_kills=0
finished=0
while [ "$finished" -eq 0 ]; do
  if compgen -G "$run/checkpoints/step_*.json" >/dev/null; then
    cmd=("$bin" train --resume "$run")
  else
    cmd=("$bin" train "$work/config.json" --set out_dir="$run")  # killed before its first checkpoint
  fi
  if [ "$done_kills" -lt "$kills" ]; then
    "${cmd[@]}" 2>>"$work/tortured.stderr" &
    pid=$!
    # Uniform in [0.3, 0.3 + 1.5·reference/kills): some kills land in start-up, most in steps and checkpoint
    # writes, and on average the kills leave work for the final, unkilled resume.
    delay=$(awk -v r="$RANDOM" -v t="$reference_seconds" -v k="$kills" 'BEGIN { printf "%.3f", 0.3 + (r / 32768) * 1.5 * t / k }')
    sleep "$delay"
    if kill -9 "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null || true
      done_kills=$((done_kills + 1))
      echo "torture: kill $done_kills/$kills after ${delay}s"
    else
      wait "$pid" || { echo "torture: run failed on its own (see $work/tortured.stderr)"; exit 1; }
      echo "torture: the run finished before kill $((done_kills + 1)); starting the tortured run over"
      rm -rf "$run"
    fi
  else
    "${cmd[@]}" 2>>"$work/tortured.stderr" || { echo "torture: final resume failed (see $work/tortured.stderr)"; exit 1; }
    finished=1
  fi
done

# Same numbers at every logged step and evaluation (wall-clock fields aside), and identical weights.
strip() { sed -E 's/"(elapsed_s|ms_per_step|tokens_per_s|mfu)":[^,}]*,?//g' "$1"; }
if ! diff <(strip "$work/reference/metrics.jsonl") <(strip "$run/metrics.jsonl") >"$work/metrics.diff"; then
  echo "torture: FAILED: metrics differ from the uninterrupted run (see $work/metrics.diff)"
  exit 1
fi
"$bin" export "$work/reference" --out "$work/reference.safetensors" 2>/dev/null
"$bin" export "$run" --out "$work/tortured.safetensors" 2>/dev/null
# Compare the tensor bytes (the JSON header differs: it names each run's out_dir).
tensor_bytes() { local header; header=$(od -An -t u8 -N8 "$1" | tr -d ' '); tail -c +$((9 + header)) "$1"; }
if ! cmp -s <(tensor_bytes "$work/reference.safetensors") <(tensor_bytes "$work/tortured.safetensors"); then
  echo "torture: FAILED: final weights differ from the uninterrupted run"
  exit 1
fi
records=$(wc -l <"$run/metrics.jsonl")
echo "torture: $done_kills kills survived; $records metrics records and final weights bit-identical"
echo "1 passed, 0 failed"
