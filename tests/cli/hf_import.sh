#!/usr/bin/env bash
# train --init-from: a Hugging Face Llama checkpoint as the start of a run. tests/hf/hf_import_models.py makes tiny
# LlamaForCausalLM models with random weights over this test's own tokenizer (MHA in one file with an untied head;
# GQA, 4 query heads on 2 key/value heads, tied, sharded with an index) and a Mixtral. Checked: ssmax-gpt's logits
# after import equal transformers' (1e-4, float32); a GQA model finetunes as SSMax with s·ln(T) = 1 and resumes;
# our export of that run imports back to the same logits; the refusals (Mixtral, rope_scaling, a conflicting key).
# Usage: bash tests/cli/hf_import.sh BINARY SCRATCH_DIR PYTHON
set -u
source "$(dirname "$0")/lib/common.sh"
cli_test_init --python "$@"

export HF_HUB_OFFLINE=1 HF_HOME="$S/hf-home"
generated_corpus 7 >"$S/corpus.txt"
CFG="$S/import.json"
# No model section: the checkpoint's config.json gives it.
write_tiny_config "$CFG" '/"model":/d'
models="$ROOT/tests/hf/hf_import_models.py"

# The tokenizer the checkpoints are made for: trained here by prepare.
run_expect 0 "$BIN" prepare "$CFG"
tokenizer=$(find "$S/cache" -name tokenizer.model | head -1)
check "prepare wrote a tokenizer" test -s "$tokenizer" || exit 1
"$PY" "$models" make "$S/hf" "$tokenizer" >"$S/make.txt" 2>&1
check "transformers made the MHA, GQA (sharded) and Mixtral checkpoints" test -s "$S/hf/gqa/model.safetensors.index.json" ||
  show "$S/make.txt"
sed 's/^/      /' "$S/make.txt" | grep -v Warning

prompt=$(sed -n 3p "$S/corpus.txt" | cut -c1-120)
# dump RUN NAME: the logits of one forward pass over the prompt, from RUN's newest checkpoint, into $S/NAME.json.
dump() { run_expect 0 "$BIN" generate "$1" --prompt "$prompt" --max-new-tokens 0 --device cpu --dump "$S/$2.json"; }
# One step at a learning rate of 1e-12 and no weight decay leaves the imported weights as they were (far below the
# tolerance) and gives the checkpoint generate reads.
frozen=(--set optim.lr=1e-12 --set optim.min_lr=0 --set optim.weight_decay=0 --set optim.warmup_steps=0
        --set train.max_steps=1 --set train.eval_every=1 --set train.checkpoint_every=1)
for name in mha gqa; do
  run_expect 0 "$BIN" train "$CFG" --init-from "$S/hf/$name" --set "out_dir=$S/run-$name" "${frozen[@]}"
  dump "$S/run-$name" "$name"
done
check "the import logged where it started from" grep -q "initialised from the Hugging Face checkpoint" \
  "$S/run-gqa/train.log"
check "block_size came from max_position_embeddings, n_kv_head from num_key_value_heads" \
  grep -q '"n_kv_head": 2' "$S/run-gqa/config.json"

# Finetuning: the GQA model converted to SSMax, s initialised so that s·ln(block_size) = 1 (1/ln 64 = 0.2404).
run_expect 0 "$BIN" train "$CFG" --init-from "$S/hf/gqa" --set "out_dir=$S/run-ft" --set train.max_steps=5 \
  --set train.checkpoint_every=5 --set train.eval_every=5 --set optim.lr=0.003 \
  --set model.attention.normalizer=ssmax --set model.attention.s_init_mode=length
check "SSMax finetuning logs s_init 1/ln(64)" grep -q "s_init 0.240" "$S/run-ft/train.log" || show "$S/run-ft/train.log"
check "five finetuning steps with a finite loss" grep -qE '"step":5,.*"train_loss":[0-9]' "$S/run-ft/metrics.jsonl"
run_expect 0 "$BIN" train --resume "$S/run-ft" --set train.max_steps=7
check "the imported run resumes to step 7" test -s "$S/run-ft/checkpoints/step_00000007.pt" ||
  ls "$S/run-ft/checkpoints"
dump "$S/run-ft" ft

# Round trip: our export of the finetuned SSMax GQA run (SSMaxLlamaForCausalLM, num_key_value_heads 2) imports
# back to the same logits.
run_expect 0 "$BIN" export "$S/run-ft" --format hf --out "$S/ft-hf"
check "the export writes num_key_value_heads" grep -q '"num_key_value_heads": 2' "$S/ft-hf/config.json"
run_expect 0 "$BIN" train "$CFG" --init-from "$S/ft-hf" --set "out_dir=$S/run-back" "${frozen[@]}"
dump "$S/run-back" back

"$PY" "$models" compare "$S/hf/mha=$S/mha.json" "$S/hf/gqa=$S/gqa.json" "$S/ft-hf=$S/ft.json" \
  "$S/ft.json=$S/back.json" >"$S/compare.txt" 2>"$S/compare_err.txt"
rc=$?
sed 's/^/      /' "$S/compare.txt"
check "logits after import equal transformers' (MHA, GQA, our SSMax export) and the round trip's (1e-4)" \
  test "$rc" -eq 0 || show "$S/compare_err.txt"

# Refusals: one line, exit 2, no run directory.
expect_fail 2 "architectures = MixtralForCausalLM is not a Llama model" -- \
  "$BIN" train "$CFG" --init-from "$S/hf/mixtral" --set "out_dir=$S/refused"
cp -r "$S/hf/mha" "$S/scaled"
sed -i 's/"rope_scaling": null/"rope_scaling": {"type": "linear", "factor": 2.0}/' "$S/scaled/config.json"
expect_fail 2 "rope_scaling" -- "$BIN" train "$CFG" --init-from "$S/scaled" --set "out_dir=$S/refused"
expect_fail 2 "model.n_head = 2 conflicts with init_from's" -- \
  "$BIN" train "$CFG" --init-from "$S/hf/mha" --set model.n_head=2 --set "out_dir=$S/refused"
check "a refused import makes no run directory" test ! -e "$S/refused"
cli_test_finish
