#!/usr/bin/env bash
# End-to-end: a miniature study on the recall task (NoPE, softmax and ssmax, 2 seeds, --jobs 2) evaluates every model at two
# lengths as trained and the softmax models again with logn applied at evaluation only; its report has the recall
# section with each arm's accuracy equal to the evaluations' own recall.json, and the tests against the baseline and
# between the trained-in normalizer and the inference-only scaling, beyond the training length only.
# Usage: bash tests/cli/study_recall.sh BINARY SCRATCH_DIR PYTHON
set -u
source "$(dirname "$0")/lib/common.sh"
cli_test_init --python "$@"

cat >"$S/config.json" <<JSON
{"name": "recall", "device": "cpu", "threads": 1, "cpu_blas": "aten",
 "data": {"task": "mqar", "mqar": {"mode": "pair", "keys": 48, "values": 4, "queries": 4}},
 "model": {"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 20, "position": "none", "norm": "rmsnorm",
           "mlp": "swiglu", "tie_embeddings": false},
 "optim": {"lr": 0.003, "min_lr": 0.0003, "warmup_steps": 2},
 "train": {"batch_size": 8, "max_steps": 10, "log_every": 5, "eval_every": 5, "eval_batches": 2,
           "checkpoint_every": 5}}
JSON
cat >"$S/study.json" <<JSON
{"name": "mini-recall", "config": "$S/config.json", "out_dir": "$S/out", "seeds": [1, 2],
 "variants": [{"name": "softmax", "set": {"model.attention.normalizer": "softmax"}},
              {"name": "ssmax", "set": {"model.attention.normalizer": "ssmax"}}],
 "recall": {"lengths": [20, 40], "sequences": 8},
 "scalings": [{"name": "logn", "normalizer": "logn", "logn_length": 20}]}
JSON
expect_ok "$BIN" study "$S/study.json" --jobs 2  # no dataset to build first: the children start at once
check "each evaluation wrote its recall.json" test "$(find "$S/out/evals" -name recall.json | wc -l)" -eq 6 ||
  find "$S/out/evals" -name recall.json
check "the report has the recall section" grep -q "Recall by context length" "$S/out/report.md" ||
  show "$S/out/report.md"
check "the report's accuracies are the evaluations' own, and its tests are those planned" \
  "$PY" - "$S/out" <<'PY'
import json, os, statistics, sys
out = sys.argv[1]
report = json.load(open(os.path.join(out, "report.json")))
arms = {"softmax": "recall", "ssmax": "recall", "softmax+logn": "recall+logn"}
ok = True
for arm, folder in arms.items():
    variant = arm.split("+")[0]
    for length in (20, 40):
        values = []
        for seed in (1, 2):
            r = json.load(open(os.path.join(out, "evals", folder, f"{variant}-seed{seed}", "recall.json")))
            values += [x["accuracy"] for x in r["results"] if x["length"] == length]
        got = report["recall"]["accuracy"][str(length)][arm]
        ok &= got["n"] == 2 and abs(got["mean"] - statistics.mean(values)) < 1e-12
tests = report["tests"]
pairs = sorted((t["a"], t["b"]) for t in tests if t["topic"] == "recall accuracy at 40 tokens")
ok &= pairs == sorted([("softmax", "ssmax"), ("softmax", "softmax+logn"), ("softmax+logn", "ssmax")])
ok &= not any(t["topic"] == "recall accuracy at 20 tokens" for t in tests)
sys.exit(0 if ok else 1)
PY
# A second invocation finds every task done: 4 trainings, 4 evaluations as trained, 2 with logn.
expect_ok "$BIN" study "$S/study.json"
check "nothing runs twice" grep -q "10 tasks (10 done already)" "$S/err.txt" "$S/out.txt" || show "$S/err.txt"

cli_test_finish
