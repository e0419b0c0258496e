"""Checks `ssmax-gpt export --format hf` directories in transformers (CPU, float32) against ssmax-gpt itself.

    python3 check_hf_export.py BINARY TEXT_FILE EXPORT_DIR=RUN_DIR...

For each export: ssmax-gpt's `generate --dump` gives our token ids and logits (tests/cli/hf_export.sh trained the
runs), and transformers, loading the directory as a user would (AutoTokenizer; AutoModelForCausalLM with
trust_remote_code=True, which a softmax export does not need: its config names a stock class), must give
  1. the same token ids for the same text, and text back from them (the tokenizer);
  2. logits within 1e-4 of ours over a window of 2 × block_size tokens for RoPE models, block_size for learned
     positions (their limit);
  3. the same 20 tokens from greedy decoding (transformers' generate, KV cache) as `ssmax-gpt generate
     --temperature 0`, from a prompt that ends at 2 × block_size (RoPE) or block_size − 20 tokens;
  4. with its KV cache, the logits of each decoding step within 1e-4 of a full forward over the same tokens: SSMax
     must scale the newest query by ln(its absolute position + 1), not by its index in the step's input.
Prints one line per export with the largest logit difference seen; exits 1 on any failure.
"""
import json
import os
import subprocess
import sys
import tempfile

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

TOLERANCE = 1e-4
NEW_TOKENS = 20
# Beyond the corpus: digits (one per token), runs of spaces, a tab, newlines, and characters the tokenizer never saw
# (byte fallback), at the start and the end too.
ODD_TEXT = " Café  42,195 m —\tnaïve\n\nΣ 😀 x=3.14159;  end "
torch.set_num_threads(2)


def ours(binary, run_dir, text, new_tokens):
    """ssmax-gpt generate (greedy) on `text`: its --dump (prompt ids, generated ids, prompt logits)."""
    with tempfile.TemporaryDirectory() as tmp:
        dump = os.path.join(tmp, "dump.json")
        subprocess.run([binary, "generate", run_dir, "--prompt", text, "--max-new-tokens", str(new_tokens),
                        "--temperature", "0", "--device", "cpu", "--threads", "2", "--dump", dump],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        with open(dump) as f:
            return json.load(f)


def text_of(tokenizer, corpus, n_tokens):
    """A piece of the corpus that is n_tokens tokens long (by the exported tokenizer; checked against ours)."""
    ids = tokenizer(corpus, add_special_tokens=True)["input_ids"][:n_tokens]
    return tokenizer.decode(ids)


def check(binary, corpus, export_dir, run_dir):
    errors = []
    config = json.load(open(os.path.join(export_dir, "config.json")))
    rope = "max_position_embeddings" in config  # Llama-shaped
    block = config["max_position_embeddings"] if rope else config["n_positions"]
    tokenizer = AutoTokenizer.from_pretrained(export_dir)
    model = AutoModelForCausalLM.from_pretrained(export_dir, trust_remote_code=True, dtype=torch.float32)
    model.eval()
    if len(tokenizer) != config["vocab_size"]:  # e.g. a special token the model lacks, added by transformers
        errors.append(f"tokenizer has {len(tokenizer)} tokens, the model {config['vocab_size']}")
    expected_class = config["architectures"][0]
    if type(model).__name__ != expected_class:
        errors.append(f"loaded as {type(model).__name__}, config says {expected_class}")
    if "auto_map" not in config and type(model).__module__.startswith("transformers_modules"):
        errors.append("a softmax export loaded custom code")

    # 1: the tokenizer on text unlike the corpus (RoPE models take a prompt of any length).
    if rope:
        mine = ours(binary, run_dir, ODD_TEXT, 0)
        ids = tokenizer(ODD_TEXT)["input_ids"]
        if ids != mine["prompt_ids"]:
            errors.append(f"tokenizer on {ODD_TEXT!r}: {ids} vs ours {mine['prompt_ids']}")
        if tokenizer.decode(ids) != ODD_TEXT:
            errors.append(f"tokenizer: {ODD_TEXT!r} decodes back as {tokenizer.decode(ids)!r}")

    # 1 + 2: the tokenizer and the logits over the window.
    window = 2 * block if rope else block
    text = text_of(tokenizer, corpus, window)
    mine = ours(binary, run_dir, text, 0)
    ids = tokenizer(text)["input_ids"]
    if ids != mine["prompt_ids"]:
        errors.append(f"tokenizer: {len(ids)} ids differ from ours ({len(mine['prompt_ids'])}): "
                      f"{ids[:12]} vs {mine['prompt_ids'][:12]}")
    if len(mine["prompt_ids"]) != window:
        errors.append(f"window is {len(mine['prompt_ids'])} tokens, meant {window}")
    with torch.no_grad():
        theirs = model(torch.tensor([mine["prompt_ids"]])).logits[0]
    logit_diff = (theirs - torch.tensor(mine["prompt_logits"])).abs().max().item()
    if not logit_diff <= TOLERANCE:
        errors.append(f"logits differ by {logit_diff:.3g} over {window} tokens (tolerance {TOLERANCE})")

    # 3 + 4: greedy decoding with the KV cache, against ours and against a full forward.
    prompt = text_of(tokenizer, corpus[len(corpus) // 2:], 2 * block if rope else block - NEW_TOKENS)
    mine = ours(binary, run_dir, prompt, NEW_TOKENS)
    with torch.no_grad():
        # An explicit all-ones mask: otherwise generate takes every prompt token equal to pad_token_id for padding.
        prompt_ids = torch.tensor([mine["prompt_ids"]])
        out = model.generate(prompt_ids, attention_mask=torch.ones_like(prompt_ids), max_new_tokens=NEW_TOKENS,
                             do_sample=False, output_logits=True, return_dict_in_generate=True, pad_token_id=0)
        generated = out.sequences[0, len(mine["prompt_ids"]):].tolist()
        full = model(out.sequences[:, :-1]).logits[0, len(mine["prompt_ids"]) - 1:]
    if generated != mine["generated_ids"]:
        errors.append(f"greedy decoding: {generated} vs ours {mine['generated_ids']}")
    cache_diff = (torch.stack(out.logits, 1)[0] - full).abs().max().item()
    if not cache_diff <= TOLERANCE:
        errors.append(f"KV-cache logits differ from a full forward by {cache_diff:.3g}")
    return logit_diff, cache_diff, errors


def main():
    binary, text_file, *pairs = sys.argv[1:]
    corpus = open(text_file, encoding="utf-8").read()
    failed = False
    for pair in pairs:
        export_dir, run_dir = pair.split("=", 1)
        logit_diff, cache_diff, errors = check(binary, corpus, export_dir, run_dir)
        status = "FAIL" if errors else "ok"
        print(f"{status}: {os.path.basename(export_dir)}: max |logit diff| {logit_diff:.2e} vs ssmax-gpt, "
              f"{cache_diff:.2e} KV cache vs full forward")
        for e in errors:
            print(f"      - {e}")
        failed = failed or bool(errors)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
