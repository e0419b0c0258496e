#!/usr/bin/env bash
# Golden losses: three fixed tiny configs (GPT-2 style softmax; Llama style with SSMax and with SSMax+bias, bf16 off)
# train on a fixed generated text for 30 steps on one CPU thread; their training and validation losses at steps 10,
# 20 and 30 must match tests/golden/tiny_losses.json within its stated tolerance. A change in the numbers a release
# computes fails here, deliberately.
# Regenerate the file only on purpose, after checking why the numbers moved: scripts/update_golden.sh.
# Usage: bash tests/cli/golden_loss.sh BINARY SCRATCH_DIR PYTHON [--update]
set -u
source "$(dirname "$0")/lib/common.sh"
cli_test_init --python "$@"
UPDATE=${4:-}
GOLDEN="$ROOT/tests/golden/tiny_losses.json"

generated_corpus 7 >corpus.txt

write_config() {  # NAME NORMALIZER MODEL_JSON
  cat >"$1.json" <<EOF
{
  "name": "$1", "seed": 3, "out_dir": "$PWD/$1", "device": "cpu", "threads": 1,
  "data": {"sources": ["$PWD/corpus.txt"], "dataset_dir": "$PWD/cache", "tokenizer": {"vocab_size": 320}},
  "model": $3,
  "optim": {"lr": 0.003, "min_lr": 0.0003, "warmup_steps": 3},
  "train": {"batch_size": 4, "max_steps": 30, "log_every": 10, "eval_every": 10, "eval_batches": 3,
            "checkpoint_every": 30, "precision": "fp32"}
}
EOF
}
write_config gpt2-softmax softmax \
  '{"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 32, "attention": {"normalizer": "softmax"}}'
write_config llama-ssmax ssmax \
  '{"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 32, "position": "rope", "norm": "rmsnorm",
    "mlp": "swiglu", "tie_embeddings": false, "attention": {"normalizer": "ssmax"}}'
write_config llama-ssmax_bias ssmax_bias \
  '{"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 32, "position": "rope", "norm": "rmsnorm",
    "mlp": "swiglu", "tie_embeddings": false, "attention": {"normalizer": "ssmax_bias"}}'

for run in gpt2-softmax llama-ssmax llama-ssmax_bias; do
  if ! "$BIN" train "$run.json" >"$run.out" 2>&1; then
    fail "training $run exited non-zero:"; tail -20 "$run.out"; cli_test_finish
  fi
done

"$PY" - "$GOLDEN" "$UPDATE" gpt2-softmax llama-ssmax llama-ssmax_bias <<'PY'
import json, math, sys
golden_path, update, runs = sys.argv[1], sys.argv[2] == "--update", sys.argv[3:]
measured = {}
for run in runs:
    records = [json.loads(line) for line in open(f"{run}/metrics.jsonl")]
    measured[run] = {
        "train_loss": {str(r["step"]): r["train_loss"] for r in records if r.get("train_loss") is not None},
        "val_loss": {str(r["step"]): r["val_loss"] for r in records if r.get("val_loss") is not None},
    }
if update:
    golden = {"about": "tests/cli/golden_loss.sh: losses of three tiny runs on generated text, 1 CPU thread; "
                       "regenerate with scripts/update_golden.sh",
              "tolerance": 1e-4, "runs": measured}
    with open(golden_path, "w") as f:
        json.dump(golden, f, indent=2)
        f.write("\n")
    print(f"wrote {golden_path}")
    sys.exit(0)
golden = json.load(open(golden_path))
tol = golden["tolerance"]
passed = failed = 0
for run, kinds in golden["runs"].items():
    for kind, by_step in kinds.items():
        for step, want in by_step.items():
            got = measured.get(run, {}).get(kind, {}).get(step)
            ok = got is not None and math.isfinite(got) and abs(got - want) <= tol
            print(f"{'ok:  ' if ok else 'FAIL:'} {run} {kind} step {step}: {got} (golden {want}, tolerance {tol})")
            passed, failed = passed + ok, failed + (not ok)
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed or passed == 0 else 0)
PY
