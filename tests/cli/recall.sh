#!/usr/bin/env bash
# The recall task end to end (data.task = mqar): a NoPE model trains on sequences generated from the seed (no data
# files), logs its answer accuracy, resumes to the same numbers as an unbroken run, and `recall` evaluates it at
# several lengths (table, JSON, figure), with a scaling swapped in at evaluation; the commands that need text refuse
# it in one line, and impossible sizes are refused naming the key.
# Usage: bash tests/cli/recall.sh BINARY SCRATCH_DIR [PYTHON]
set -u
source "$(dirname "$0")/lib/common.sh"
cli_test_init "$@"

write_recall_config() {  # FILE OUT_DIR MAX_STEPS
  cat >"$1" <<EOF
{
  "name": "recall", "seed": 3, "out_dir": "$2", "device": "cpu", "threads": 1, "cpu_blas": "aten",
  "data": {"task": "mqar", "mqar": {"mode": "pair", "keys": 48, "values": 4, "queries": 4, "min_pairs": 6}},
  "model": {"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 20, "position": "none", "norm": "rmsnorm",
            "mlp": "swiglu", "tie_embeddings": false, "attention": {"normalizer": "ssmax"}},
  "optim": {"lr": 0.003, "min_lr": 0.0003, "warmup_steps": 2},
  "train": {"batch_size": 8, "max_steps": $3, "log_every": 2, "eval_every": 4, "eval_batches": 2,
            "checkpoint_every": 4}
}
EOF
}

write_recall_config "$S/recall.json" "$S/run" 12
expect_ok "$BIN" train "$S/recall.json"
check "the log shows the answer accuracy against chance" grep -q "val recall accuracy .* chance 0.250" "$S/run/train.log" ||
  show "$S/run/train.log"
check "the final line names the answer loss and its chance level" \
  grep -q "final val answer loss .* (chance: ln 4 = 1.386)" "$S/run/train.log" || show "$S/run/train.log"
check "no dataset directory was made" test ! -e "$S/data"

# Stopped at step 8 and resumed, a run gives the unbroken run's numbers (batches are a function of the step alone).
write_recall_config "$S/recall2.json" "$S/run2" 12
expect_ok "$BIN" train "$S/recall2.json" --stop-at 8
expect_ok "$BIN" train --resume "$S/run2"
check "a resumed run has the unbroken run's metrics" same_metrics "$S/run" "$S/run2"
expect_fail 2 "data.mqar" -- "$BIN" train --resume "$S/run2" --set train.max_steps=16 --set data.mqar.values=5

# recall: block 20 → 20 and 40 tokens (16 and 36 pairs); 80 tokens would need 76 pairs of 48 keys: left out.
expect_ok "$BIN" recall "$S/run" --sequences 16 --threads 1 --out "$S/recall"
check "the table lists both lengths" grep -qE "^run@12 +40 +36 " "$S/out.txt" || show "$S/out.txt"
check "recall.json holds accuracy and attention mass per layer and head" python3 - "$S/recall/recall.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
ok = r["lengths"] == [20, 40] and len(r["results"]) == 2
for x in r["results"]:
    ok &= 0 <= x["accuracy"] <= 1 and x["answers"] == 16 * 4 and x["loss"] > 0
    ok &= len(x["attention_mass"]) == 1 and len(x["attention_mass"][0]) == 2
    ok &= 0 < x["uniform_mass"] < 1 and 0 <= x["best_head_mass"] <= 1 + 1e-9
sys.exit(0 if ok else 1)
PY
check "the figure is written" test -s "$S/recall/recall.png" -a -s "$S/recall/recall.svg"
expect_ok "$BIN" recall "$S/run" --lengths 20 --sequences 8 --threads 1 --normalizer ssmax_bias --out "$S/recall-b"
check "a swap is labelled as such" python3 -c "
import json, sys; r = json.load(open('$S/recall-b/recall.json'))['results'][0]
sys.exit(0 if r['normalizer'] == 'ssmax_bias' and r['normalizer_swapped_in'] else 1)"
expect_fail 2 "a swap may only keep or add parameters" -- "$BIN" recall "$S/run" --normalizer softmax --threads 1

expect_fail 2 "data.mqar.keys = 48" -- "$BIN" recall "$S/run" --lengths 80 --threads 1
expect_fail 2 "ssmax-gpt recall" -- "$BIN" eval "$S/run" --lengths 20 --threads 1
expect_fail 2 "ssmax-gpt recall" -- "$BIN" generate "$S/run" --prompt hello --threads 1
expect_fail 2 "needs a tokenizer" -- "$BIN" export "$S/run" --format hf --out "$S/hf"
expect_fail 2 "do not fit in model.block_size = 20" -- "$BIN" train "$S/recall.json" --set data.mqar.pairs=19

cli_test_finish
