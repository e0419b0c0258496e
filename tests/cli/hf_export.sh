#!/usr/bin/env bash
# export --format hf, read by transformers (installed by scripts/test.sh): for each attention normalizer (softmax,
# ssmax, ssmax_bias) and both layouts transformers has a class for (Llama: RoPE + RMSNorm + SwiGLU; GPT-2: learned
# positions + LayerNorm + GELU), Llama layers without RoPE (NoPE; every other layer, as Llama 4's interleaving) and the
# scalings logn and llama4, a tiny trained model is exported and tests/hf/check_hf_export.py compares the tokenizer,
# the logits (1e-4), greedy decoding and the KV cache with ssmax-gpt's own. Then: bf16 weights, the
# refusals (a shape neither class expresses; an occupied --out) and --force.
# Usage: bash tests/cli/hf_export.sh BINARY SCRATCH_DIR PYTHON
set -u
source "$(dirname "$0")/lib/common.sh"
cli_test_init --python "$@"

# transformers offline, its cache (the SSMax modeling code it copies to import) in the scratch directory.
export HF_HUB_OFFLINE=1 HF_HOME="$S/hf-home"
generated_corpus 7 >"$S/corpus.txt"
CFG="$S/tiny.json"
write_tiny_config "$CFG"
# Trained enough that the logits are not near-uniform (greedy decoding then has clear winners); s and b start away
# from 1 and 0 so that a model that dropped or misplaced them would show.
train_args=(--set model.n_layer=2 --set train.max_steps=20 --set optim.lr=0.01 --set train.eval_every=20
            --set train.checkpoint_every=20 --set model.attention.s_init=0.8 --set model.attention.b_init=0.4)
llama=(--set model.position=rope --set model.norm=rmsnorm --set model.mlp=swiglu --set model.rope_theta=500)
gpt2=(--set model.position=learned --set model.norm=layernorm --set model.mlp=gelu --set model.tie_embeddings=true)

# train NAME ARGS...: a run in $S/NAME, exported to $S/NAME-hf.
pairs=()
train_and_export() {
  local name=$1
  shift
  run_expect 0 "$BIN" train "$CFG" "${train_args[@]}" --set "out_dir=$S/$name" "$@"
  run_expect 0 "$BIN" export "$S/$name" --format hf --out "$S/$name-hf"
  pairs+=("$S/$name-hf=$S/$name")
}
train_and_export llama-softmax "${llama[@]}" --set model.tie_embeddings=false
train_and_export llama-ssmax "${llama[@]}" --set model.attention.normalizer=ssmax --set model.attention.learn_s=false
train_and_export llama-ssmax_bias "${llama[@]}" --set model.attention.normalizer=ssmax_bias --set model.bias=true \
  --set model.tie_embeddings=false
# Without position encoding (NoPE) and with RoPE on every other layer only (Llama 4's interleaving): the modeling
# code gives those layers the identity rotation.
train_and_export llama-nope-softmax "${llama[@]}" --set model.position=none
train_and_export llama-irope-ssmax_bias "${llama[@]}" --set model.nope_every=2 \
  --set model.attention.normalizer=ssmax_bias
# The length-aware scalings (docs/normalizers.md), checked past the training length: Qwen-1's logn on every layer,
# Llama 4's temperature on the NoPE layers only.
train_and_export llama-logn "${llama[@]}" --set model.attention.normalizer=logn
train_and_export llama-irope-llama4 "${llama[@]}" --set model.nope_every=2 --set model.attention.normalizer=llama4 \
  --set model.attention.scaled_layers=nope --set model.attention.attn_scale=0.5 --set model.attention.floor_scale=8
train_and_export gpt2-softmax "${gpt2[@]}" --set model.bias=true
train_and_export gpt2-ssmax "${gpt2[@]}" --set model.attention.normalizer=ssmax
train_and_export gpt2-ssmax_bias "${gpt2[@]}" --set model.attention.normalizer=ssmax_bias --set model.bias=true

check "softmax exports carry no modeling code, SSMax and NoPE exports do" \
  test ! -e "$S/llama-softmax-hf/modeling_ssmax.py" -a ! -e "$S/gpt2-softmax-hf/modeling_ssmax.py" \
  -a -s "$S/llama-ssmax-hf/modeling_ssmax.py" -a -s "$S/gpt2-ssmax_bias-hf/configuration_ssmax.py" \
  -a -s "$S/llama-nope-softmax-hf/modeling_ssmax.py"
check "the interleaved export lists its layers without RoPE" \
  "$PY" -c 'import json, sys; sys.exit(json.load(open(sys.argv[1]))["no_rope_layers"] != [1, 0])' \
  "$S/llama-irope-ssmax_bias-hf/config.json"
"$PY" "$ROOT/tests/hf/check_hf_export.py" "$BIN" "$S/corpus.txt" "${pairs[@]}" >"$S/check.txt" 2>"$S/check_err.txt"
rc=$?
sed 's/^/      /' "$S/check.txt"
check "transformers: tokenizer, logits (1e-4), greedy decoding and KV cache equal ssmax-gpt's" test "$rc" -eq 0 ||
  show "$S/check_err.txt"

# bf16: the same tensors, rounded to bfloat16.
run_expect 0 "$BIN" export "$S/llama-ssmax_bias" --format hf --dtype bf16 --out "$S/bf16-hf"
same_in_bf16() {
  "$PY" - "$S/llama-ssmax_bias-hf/model.safetensors" "$S/bf16-hf/model.safetensors" <<'PY'
import sys
from safetensors.torch import load_file
import torch
f32, bf16 = load_file(sys.argv[1]), load_file(sys.argv[2])
bad = [k for k in f32 if bf16.get(k) is None or bf16[k].dtype != torch.bfloat16 or
       not torch.equal(bf16[k], f32[k].to(torch.bfloat16))]
sys.exit(1 if bad or set(f32) != set(bf16) else 0)
PY
}
check "--dtype bf16 writes every tensor as the float32 export rounded to bfloat16" same_in_bf16
check "config.json of the bf16 export says torch_dtype bfloat16" grep -q '"torch_dtype": "bfloat16"' \
  "$S/bf16-hf/config.json"

# Refusals: one line naming the key, exit code 2, nothing written.
run_expect 0 "$BIN" train "$CFG" --set "out_dir=$S/rope-layernorm" --set model.position=rope --set train.max_steps=2
expect_fail 2 "model.norm=layernorm with model.position=rope" -- \
  "$BIN" export "$S/rope-layernorm" --format hf --out "$S/refused-hf"
check "a refused export leaves no directory" test ! -e "$S/refused-hf"
expect_fail 2 "--dtype f16: must be f32 or bf16" -- \
  "$BIN" export "$S/llama-ssmax" --format hf --dtype f16 --out "$S/refused-hf"
expect_fail 2 "directory is not empty; pass --force" -- \
  "$BIN" export "$S/llama-ssmax" --format hf --out "$S/llama-softmax-hf"
check "a refused export leaves the existing one as it was" grep -q '"LlamaForCausalLM"' "$S/llama-softmax-hf/config.json"
mkdir -p "$S/not-an-export" && echo keep >"$S/not-an-export/notes.txt"
expect_fail 2 "not an earlier export" -- "$BIN" export "$S/llama-ssmax" --format hf --force --out "$S/not-an-export"
check "--force keeps a directory that is not an export" test -s "$S/not-an-export/notes.txt"
run_expect 0 "$BIN" export "$S/llama-ssmax" --format hf --out "$S/again-hf"
run_expect 0 "$BIN" export "$S/gpt2-softmax" --format hf --force --out "$S/again-hf"
check "--force replaces an earlier export, files of the old one included" \
  test ! -e "$S/again-hf/modeling_ssmax.py" -a -n "$(grep GPT2LMHeadModel "$S/again-hf/config.json")"
check "no temporary directories are left" test -z "$(find "$S" -maxdepth 1 -name '*-hf.tmp-*' -o -maxdepth 1 \
  -name '*-hf.old-*')"

cli_test_finish
