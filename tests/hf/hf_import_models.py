"""Hugging Face side of tests/cli/hf_import.sh: makes the tiny random checkpoints ssmax-gpt imports, and compares
transformers' logits with ssmax-gpt's `generate --dump`. Each command does all its work in one process
(importing transformers takes seconds).

  make ROOT TOKENIZER [NAME ...]
                         ROOT/mha: LlamaForCausalLM, 4 heads, untied head, one model.safetensors;
                         ROOT/gqa: 4 query heads sharing 2 key/value heads, tied embeddings, sharded into several
                         files with model.safetensors.index.json; ROOT/mixtral: a MixtralForCausalLM (to be refused).
                         Random weights; TOKENIZER (its size is the vocabulary) copied in as tokenizer.model. Only
                         the NAMEs given (default: all three).
  compare A=B ...        A an HF directory: transformers' float32 logits over dump B's prompt ids against B's logits;
                         A a dump: the two dumps' logits. Prints the largest difference; exit 1 above --tol.
"""
import argparse
import json
import pathlib
import shutil
import sys

import sentencepiece
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, MixtralConfig, MixtralForCausalLM


def vocab_of(tokenizer):
    return sentencepiece.SentencePieceProcessor(model_file=str(tokenizer)).get_piece_size()


def llama(out, tokenizer, kv_heads, tied, shard, seed):
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab_of(tokenizer), hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=kv_heads, max_position_embeddings=64,
                         rms_norm_eps=1e-5, rope_theta=500.0, tie_word_embeddings=tied, attention_bias=False,
                         mlp_bias=False)
    model = LlamaForCausalLM(config).float().eval()
    # transformers' init (std 0.02, unit norms) gives near-uniform logits that would hide a misplaced tensor:
    # larger weights and uneven norm gains make every tensor matter.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1 + 0.3 * torch.randn_like(p))
            else:
                p.normal_(0, 0.15)
    model.save_pretrained(out, safe_serialization=True, max_shard_size="100KB" if shard else "5GB")
    shutil.copy(tokenizer, out / "tokenizer.model")
    files = len(list(out.glob("*.safetensors")))
    print(f"{out.name}: {files} safetensors file(s), {kv_heads} kv heads, vocab {config.vocab_size}, tied {tied}")


def make(args):
    root = pathlib.Path(args.root)
    names = args.names or ["mha", "gqa", "mixtral"]
    if set(names) - {"mha", "gqa", "mixtral"}:
        raise SystemExit(f"make: unknown model(s) {sorted(set(names) - {'mha', 'gqa', 'mixtral'})}")
    if "mha" in names:
        llama(root / "mha", args.tokenizer, kv_heads=4, tied=False, shard=False, seed=1)
    if "gqa" in names:
        llama(root / "gqa", args.tokenizer, kv_heads=2, tied=True, shard=True, seed=2)
    if "mixtral" not in names:
        return
    config = MixtralConfig(vocab_size=vocab_of(args.tokenizer), hidden_size=32, intermediate_size=64,
                           num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2, num_local_experts=2,
                           rms_norm_eps=1e-5)
    MixtralForCausalLM(config).save_pretrained(root / "mixtral", safe_serialization=True)
    shutil.copy(args.tokenizer, root / "mixtral" / "tokenizer.model")


def logits_of(source, prompt_ids):
    if source.is_dir():
        model = AutoModelForCausalLM.from_pretrained(source, trust_remote_code=True, dtype=torch.float32).eval()
        with torch.no_grad():
            return model(torch.tensor([prompt_ids])).logits[0]
    dump = json.loads(source.read_text())
    if dump["prompt_ids"] != prompt_ids:
        raise SystemExit(f"{source}: another prompt than the dump it is compared with")
    return torch.tensor(dump["prompt_logits"])


def compare(args):
    failed = 0
    for pair in args.pairs:
        a, b = (pathlib.Path(x) for x in pair.split("=", 1))
        dump = json.loads(b.read_text())
        theirs, ours = logits_of(a, dump["prompt_ids"]), torch.tensor(dump["prompt_logits"])
        diff = (theirs - ours).abs().max().item() if theirs.shape == ours.shape else float("nan")
        ok = diff <= args.tol  # NaN (another shape, or non-finite logits) fails
        failed += not ok
        print(f"{'PASS' if ok else 'FAIL'} {a.name} vs {b.name}: {len(dump['prompt_ids'])} tokens, "
              f"max|Δlogits| = {diff:.2e} (max|logit| {ours.abs().max().item():.2f}, tolerance {args.tol})")
    return 1 if failed else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("make")
    p.add_argument("root")
    p.add_argument("tokenizer")
    p.add_argument("names", nargs="*", metavar="NAME")  # choices would refuse none given (Python 3.11)
    p = sub.add_parser("compare")
    p.add_argument("pairs", nargs="+", metavar="A=B")
    p.add_argument("--tol", type=float, default=1e-4)
    args = parser.parse_args()
    return {"make": make, "compare": compare}[args.command](args) or 0


if __name__ == "__main__":
    sys.exit(main())
