#!/usr/bin/env bash
# Packed documents end to end (model.attention.document_mask): on a JSON Lines corpus of many short documents,
# a masked RoPE SSMax model trains, resumes, evaluates by length, generates and exports (the exported configs say
# it was trained masked); a resume that changes the key is refused naming it; training is deterministic.
# Usage: bash tests/cli/document_mask.sh BINARY SCRATCH_DIR [PYTHON]
set -u
source "$(dirname "$0")/lib/common.sh"
cli_test_init "$@"

# ~300 documents of 1–6 lines each (~20–120 tokens at this vocabulary), so every 32-token window holds boundaries.
cycled_corpus | awk 'BEGIN { doc = ""; lines = 0; want = 1 }
  { doc = doc $0 "\\n"; lines++
    if (lines >= want) { printf "{\"text\": \"%s\"}\n", doc; doc = ""; lines = 0; want = (NR % 6) + 1 } }
  END { if (doc != "") printf "{\"text\": \"%s\"}\n", doc }' >"$S/docs.jsonl"
check "corpus of $(wc -l <"$S/docs.jsonl") documents" test "$(wc -l <"$S/docs.jsonl")" -gt 250

CFG="$S/masked.json"
write_tiny_config "$CFG" "s#\"$S/corpus.txt\"#\"$S/docs.jsonl\"#"
python3 - "$CFG" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["model"].update({"position": "rope", "norm": "rmsnorm", "mlp": "swiglu", "tie_embeddings": False,
                   "attention": {"normalizer": "ssmax", "document_mask": True}})
c["train"].update({"max_steps": 6, "checkpoint_every": 3})
json.dump(c, open(sys.argv[1], "w"), indent=1)
PY

expect_ok "$BIN" train "$CFG"
grep -q '"document_mask": true' "$S/run/config.json" && ok "run config records document_mask" ||
  fail "run config lacks document_mask: true"

# The same config twice gives the same numbers (the masked path is deterministic on CPU).
sed "s#\"$S/run\"#\"$S/run2\"#" "$CFG" >"$S/masked2.json"
expect_ok "$BIN" train "$S/masked2.json"
check "a second run has the same metrics" same_metrics "$S/run" "$S/run2"

# Resume: extending the run is fine; switching the mask off is refused, naming the key.
expect_ok "$BIN" train --resume "$S/run" --set train.max_steps=8
expect_fail 2 "model.attention.document_mask" -- "$BIN" train --resume "$S/run" --set train.max_steps=10 \
  --set model.attention.document_mask=false

# Evaluation by length on the validation split (documents known): positions are within documents.
expect_ok "$BIN" eval "$S/run" --lengths 32,64 --batches 4 --out "$S/eval" --threads 1
check "eval binned predictions by their context within documents" python3 - "$S/eval/eval.json" <<'PY'
import json, math, sys
results = json.load(open(sys.argv[1]))["results"]
ok = len(results) == 2
for r in results:
    ok &= r["within_documents"] is True and math.isfinite(r["loss"])
    ok &= sum(b["tokens"] for b in r["bins"]) == r["tokens"] == r["windows"] * r["length"]
# every document starting inside a window adds a prediction from 1 token of context: more than one per window
ok &= any(r["bins"][0]["lo"] == 1 and r["bins"][0]["tokens"] > r["windows"] for r in results)
sys.exit(0 if ok else 1)
PY

expect_ok "$BIN" generate "$S/run" --prompt "the lord said" --max-new-tokens 8 --temperature 0
expect_ok "$BIN" export "$S/run" --out "$S/model.safetensors"
grep -q '"document_mask": *true' "$S/model.config.json" && ok "safetensors export config says document_mask" ||
  fail "model.config.json lacks document_mask: true"
expect_ok "$BIN" export "$S/run" --format hf --out "$S/hf"
grep -q '"trained_with_document_mask": *true' "$S/hf/config.json" && ok "HF config says trained_with_document_mask" ||
  fail "hf/config.json lacks trained_with_document_mask: true"

cli_test_finish
