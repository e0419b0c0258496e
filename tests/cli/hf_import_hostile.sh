#!/usr/bin/env bash
# train --init-from DIR with a DIR that contradicts itself or the data: each refused in one line naming the file, before
# a run directory or a dataset exists. Copies of one tiny transformers Llama (tests/hf/hf_import_models.py, over this
# test's 300-piece tokenizer) are damaged one way each: config.json's vocab_size negative, or not the tokenizer's
# size, or not the embedding's rows; a tokenizer of 310 pieces; a tokenizer.model that is not one; two tensors on the
# same bytes of model.safetensors; config.json's num_key_value_heads against the k/v tensors; data.prepared encoded
# with another tokenizer of the same size (and, accepted, with the same one).
# Usage: bash tests/cli/hf_import_hostile.sh BINARY SCRATCH_DIR PYTHON
set -u
source "$(dirname "$0")/lib/common.sh"
cli_test_init --python "$@"

export HF_HUB_OFFLINE=1 HF_HOME="$S/hf-home"
generated_corpus 7 >"$S/corpus.txt"
generated_corpus 8 >"$S/other.txt"
CFG="$S/import.json"
write_tiny_config "$CFG" '/"model":/d'
# Another corpus, another cache: its tokenizers are other ones, of 300 pieces and of 310.
write_tiny_config "$S/other.json" "s#$S/corpus.txt#$S/other.txt#; s#$S/cache#$S/other-cache#"

run_expect 0 "$BIN" prepare "$CFG"
run_expect 0 "$BIN" prepare "$S/other.json"
run_expect 0 "$BIN" prepare "$S/other.json" --set data.tokenizer.vocab_size=310 --set "data.dataset_dir=$S/cache-310"
dataset=$(dirname "$(find "$S/cache" -name meta.json | head -1)")
other_dataset=$(dirname "$(find "$S/other-cache" -name meta.json | head -1)")
tokenizer_310=$(find "$S/cache-310" -name tokenizer.model | head -1)
check "three tokenizers prepared" test -s "$dataset/tokenizer.model" -a -s "$other_dataset/tokenizer.model" \
  -a -s "$tokenizer_310" || exit 1
"$PY" "$ROOT/tests/hf/hf_import_models.py" make "$S/hf" "$dataset/tokenizer.model" mha >"$S/make.txt" 2>&1
check "transformers made the checkpoint" grep -q '"vocab_size": 300' "$S/hf/mha/config.json" || show "$S/make.txt"

# variant NAME: a copy of the good checkpoint at $S/NAME, to damage.
variant() { rm -rf "${S:?}/$1" && cp -r "$S/hf/mha" "$S/$1"; }
# refused NAME: train from $S/NAME, into a run directory of its own (none may appear).
refused() { "$BIN" train "$CFG" --init-from "$S/$1" --set "out_dir=$S/refused-$1"; }

# 1. config.json's vocab_size: not a positive integer; not the tokenizer's size; not the embedding's rows (with a
# tokenizer of that size).
variant negative
sed -i 's/"vocab_size": 300/"vocab_size": -300/' "$S/negative/config.json"
expect_fail 2 "$S/negative/config.json: vocab_size = -300 is not a positive integer" -- refused negative
variant vocab
sed -i 's/"vocab_size": 300/"vocab_size": 310/' "$S/vocab/config.json"
expect_fail 2 "$S/vocab/config.json: vocab_size = 310 but $S/vocab/tokenizer.model has 300 pieces" -- refused vocab
variant rows
sed -i 's/"vocab_size": 300/"vocab_size": 310/' "$S/rows/config.json"
cp "$tokenizer_310" "$S/rows/tokenizer.model"
expect_fail 1 "$S/rows/model.safetensors: lm_head.weight is [300, 64] but $S/rows/config.json makes it [310, 64] \
(vocab_size, hidden_size)" -- refused rows

# 5. A tokenizer of 310 pieces for the 300 rows: refused before the data is prepared with it.
variant tokenizer
cp "$tokenizer_310" "$S/tokenizer/tokenizer.model"
expect_fail 2 "$S/tokenizer/config.json: vocab_size = 300 but $S/tokenizer/tokenizer.model has 310 pieces" -- \
  refused tokenizer
check "nothing was prepared on the way" bash -c "! grep -q 'the shards use' '$S/out.txt' '$S/err.txt'"

# 4. A tokenizer.model that is not one: named where the user keeps it, without sentencepiece's source lines.
variant garbage
echo "this is not a tokenizer" >"$S/garbage/tokenizer.model"
expect_fail 1 "$S/garbage/tokenizer.model: not a usable sentencepiece model: its bytes do not parse as one" -- refused garbage
check "the message names neither a build directory nor sentencepiece's source" \
  bash -c "! grep -qE '\.tmp-|\.cc\(' '$S/err.txt'" || show "$S/err.txt"
# prepare with it as data.tokenizer.model names it there too, not its copy in the dataset's build directory (which
# prepare's log names on the line before).
run_expect 1 "$BIN" prepare "$CFG" --set "data.tokenizer.model=$S/garbage/tokenizer.model"
check "prepare names the given tokenizer.model" \
  bash -c "tail -1 '$S/err.txt' | grep -qF '] $S/garbage/tokenizer.model: not a usable sentencepiece model'" ||
  show "$S/err.txt"

# 2. Two tensors on the same bytes (the later of q_proj and k_proj pointed at the earlier's): not taken as q = k.
variant overlap
"$PY" - "$S/overlap/model.safetensors" <<'EOF'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header, data = json.loads(raw[8:8 + n]), raw[8 + n:]
layer = "model.layers.0.self_attn."
first, later = sorted((header[layer + "q_proj.weight"], header[layer + "k_proj.weight"]),
                      key=lambda t: t["data_offsets"][0])
later["data_offsets"] = first["data_offsets"]
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(text)) + text + data)
EOF
expect_fail 1 "$S/overlap/model.safetensors: tensors 'model.layers.0.self_attn." -- refused overlap
check "the overlap names both tensors" grep -qE "(q_proj|k_proj).weight' \(data bytes \[[0-9]+, [0-9]+\)\) and \
'model.layers.0.self_attn.(k_proj|q_proj).weight' \(data bytes .* overlap" "$S/err.txt" || show "$S/err.txt"

# 3. A shape config.json contradicts (2 key/value heads for k_proj and v_proj of 4): named, with both shapes.
variant heads
sed -i 's/"num_key_value_heads": 4/"num_key_value_heads": 2/' "$S/heads/config.json"
expect_fail 1 "$S/heads/model.safetensors: model.layers.0.self_attn.k_proj.weight is [64, 64] but \
$S/heads/config.json makes it [32, 64] (num_key_value_heads·head_dim, hidden_size)" -- refused heads

# 6. data.prepared encoded with another tokenizer of the same size: its ids would mean other pieces.
check "the other dataset's tokenizer has the same 300 pieces" grep -q '"vocab_size": 300' "$other_dataset/meta.json"
expect_fail 2 "data.prepared = '$other_dataset' was encoded with $other_dataset/tokenizer.model, another tokenizer \
than data.tokenizer.model = '$S/hf/mha/tokenizer.model'" -- \
  "$BIN" train "$CFG" --init-from "$S/hf/mha" --set "data.prepared=$other_dataset" --set "out_dir=$S/refused-prepared"

check "a refused import makes no run directory" test -z "$(find "$S" -maxdepth 1 -name 'refused-*')"
check "nor a dataset" test "$(find "$S/cache" -name meta.json | wc -l)" -eq 1 -a -z "$(find "$S/cache" -name '.tmp-*')"

# The dataset encoded with the checkpoint's own tokenizer is taken.
run_expect 0 "$BIN" train "$CFG" --init-from "$S/hf/mha" --set "data.prepared=$dataset" --set "out_dir=$S/run" \
  --set train.max_steps=1 --set train.eval_every=1 --set train.checkpoint_every=1
check "data.prepared with the checkpoint's tokenizer trains" test -s "$S/run/checkpoints/step_00000001.pt"
cli_test_finish
