#!/usr/bin/env python3
"""An independent GPT in plain PyTorch (float64), written from the maths in README.md, to check ssmax-gpt.

Usage: reference_gpt.py CASES_DIR [--tol 1e-5]

Every sub-directory of CASES_DIR is one case, written by the C++ parity test:
  model.safetensors, model.config.json   `ssmax-gpt export` of a model
  inputs.safetensors                      idx, targets [B, T] int64; logits [B, T, vocab] and loss [1] float32:
                                          what ssmax-gpt computed for them; optionally positions [B, T] int64,
                                          each token's position within its document (packed documents)
The reference recomputes logits and loss from the exported weights and compares. Prints one line per case;
exits 1 when any case differs by more than --tol (absolute, on logits and loss), 2 on a usage error.
"""
import argparse
import json
import math
import pathlib
import sys

import torch
from safetensors.torch import load_file


def norm(x, w, bias, kind):
    """LayerNorm (eps 1e-5) or RMSNorm: x·rsqrt(mean(x²) + 1e-5)·w."""
    if kind == "rmsnorm":
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * w
    mean = x.mean(-1, keepdim=True)
    var = (x - mean).pow(2).mean(-1, keepdim=True)
    y = (x - mean) / torch.sqrt(var + 1e-5) * w
    return y + bias if bias is not None else y


def linear(x, w, b=None):
    """Weights are [out, in]: y = x·Wᵀ (+ b)."""
    y = x @ w.T
    return y + b if b is not None else y


def rope(x, theta, pos):
    """Rotate-half RoPE on [B, H, T, d]: the pair (x[j], x[j + d/2]) turns by pos[b, t]·θ^(-2j/d)."""
    d = x.shape[-1]
    half = d // 2
    j = torch.arange(half, dtype=torch.float64)
    angle = pos.to(torch.float64)[:, None, :, None] * theta ** (-2.0 * j / d)  # [B, 1, T, half]
    cos, sin = torch.cos(angle), torch.sin(angle)
    a, b = x[..., :half], x[..., half:]
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)


def has_rope(cfg, layer):
    """Layer `layer` (0-based) rotates q and k: position "rope", except layers k, 2k, … (1-based) for nope_every = k
    (Llama 4's interleaving); position "none" (NoPE) and "learned" never do."""
    every = cfg.get("nope_every", 0)
    return cfg["position"] == "rope" and not (every > 0 and (layer + 1) % every == 0)


def attention(x, w, prefix, cfg, pos, layer):
    """pos [B, T]: each token's position within its document; a query sees the keys of its own document only."""
    B, T, C = x.shape
    H = cfg["n_head"]
    d = C // H
    qkv = linear(x, w[prefix + "c_attn.weight"], w.get(prefix + "c_attn.bias"))
    # Grouped-query attention: c_attn's rows are q (H heads), k and v (H_kv heads each).
    H_kv = cfg.get("n_kv_head", 0) or H
    q, k, v = qkv.split([C, H_kv * d, H_kv * d], dim=-1)
    q = q.reshape(B, T, H, d).transpose(1, 2)
    k, v = (t.reshape(B, T, H_kv, d).transpose(1, 2) for t in (k, v))
    if has_rope(cfg, layer):
        q, k = rope(q, cfg["rope_theta"], pos), rope(k, cfg["rope_theta"], pos)
    # Query head h uses key/value head h // (H / H_kv), as Hugging Face Llama's repeat_kv (expand, then flatten).
    group = H // H_kv
    k, v = (t[:, :, None].expand(B, H_kv, group, T, d).reshape(B, H, T, d) for t in (k, v))
    logits = (q @ k.transpose(-1, -2)) / math.sqrt(d)  # [B, H, T, T]
    a = cfg["attention"]
    kind = a["normalizer"]
    # logn and llama4 may act on the layers without any position encoding only (NoPE).
    nope = cfg["position"] == "none" or (cfg["position"] == "rope" and not has_rope(cfg, layer))
    if kind in ("logn", "llama4") and a.get("scaled_layers", "all") == "nope" and not nope:
        kind = "softmax"
    # The query at position p of its document normalises over n = p + 1 keys: its row of logits is multiplied by
    # c(n).
    n = (pos.to(torch.float64) + 1).view(B, 1, T, 1)
    if kind in ("ssmax", "ssmax_bias"):
        factor = w[prefix + "normalizer.s"].view(1, H, 1, 1) * torch.log(n)  # s·ln n
        if kind == "ssmax_bias":
            factor = factor + w[prefix + "normalizer.b"].view(1, H, 1, 1)  # + b
        logits = logits * factor
    elif kind == "logn":  # Qwen-1: log_L n beyond L, 1 before
        L = a.get("logn_length", 0) or cfg["block_size"]
        logits = logits * torch.where(n > L, torch.log(n) / math.log(L), torch.ones_like(n))
    elif kind == "llama4":  # Llama 4: 1 + a·ln(1 + ⌊n / F⌋)
        F = a.get("floor_scale", 0) or cfg["block_size"]
        logits = logits * (1 + a.get("attn_scale", 0.1) * torch.log(1 + torch.floor(n / F)))
    # Key j is hidden from query i when it is in i's future or before the start of i's document (i - pos[i]).
    i = torch.arange(T)
    future = i[None, :] > i[:, None]  # [T, T]
    other_document = i[None, None, :] < (i[None, :] - pos)[:, :, None]  # [B, T, T]
    logits = logits.masked_fill((future[None] | other_document)[:, None], float("-inf"))
    y = torch.softmax(logits, dim=-1) @ v
    y = y.transpose(1, 2).reshape(B, T, C)
    return linear(y, w[prefix + "c_proj.weight"], w.get(prefix + "c_proj.bias"))


def mlp(x, w, prefix, cfg):
    if cfg["mlp"] == "swiglu":
        gate = linear(x, w[prefix + "c_gate.weight"], w.get(prefix + "c_gate.bias"))
        hidden = torch.nn.functional.silu(gate) * linear(x, w[prefix + "c_fc.weight"], w.get(prefix + "c_fc.bias"))
    else:
        hidden = torch.nn.functional.gelu(linear(x, w[prefix + "c_fc.weight"], w.get(prefix + "c_fc.bias")),
                                          approximate="tanh")
    return linear(hidden, w[prefix + "c_proj.weight"], w.get(prefix + "c_proj.bias"))


def forward(idx, w, cfg, pos):
    x = w["wte.weight"][idx]
    if cfg["position"] == "learned":
        x = x + w["wpe.weight"][pos]
    for i in range(cfg["n_layer"]):
        p = f"h.{i}."
        x = x + attention(norm(x, w[p + "ln_1.weight"], w.get(p + "ln_1.bias"), cfg["norm"]), w, p + "attn.", cfg, pos,
                          i)
        x = x + mlp(norm(x, w[p + "ln_2.weight"], w.get(p + "ln_2.bias"), cfg["norm"]), w, p + "mlp.", cfg)
    x = norm(x, w["ln_f.weight"], w.get("ln_f.bias"), cfg["norm"])
    head = w["wte.weight"] if cfg["tie_embeddings"] else w["lm_head.weight"]
    return linear(x, head)


def check_case(case_dir, tol):
    description = json.loads((case_dir / "model.config.json").read_text())
    cfg = description["config"]["model"]
    weights = {k: t.to(torch.float64) for k, t in load_file(str(case_dir / "model.safetensors")).items()}
    if cfg["tie_embeddings"] == ("lm_head.weight" in weights):
        raise SystemExit(f"{case_dir}: lm_head.weight present/absent contradicts tie_embeddings")
    inputs = load_file(str(case_dir / "inputs.safetensors"))
    B, T = inputs["idx"].shape
    # Without document masking every row is one sequence from position 0, whatever positions a case gives.
    packed = "positions" in inputs and cfg["attention"].get("document_mask", False)
    pos = inputs["positions"] if packed else torch.arange(T).expand(B, T)
    logits = forward(inputs["idx"], weights, cfg, pos)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), inputs["targets"].reshape(-1))
    logits_diff = (logits - inputs["logits"].to(torch.float64)).abs().max().item()
    loss_diff = abs(loss.item() - inputs["loss"].item())
    ok = logits_diff <= tol and loss_diff <= tol  # NaN compares False: a NaN fails
    print(f"{'PASS' if ok else 'FAIL'} {case_dir.name}: T={T}{' packed' if packed else ''} "
          f"max|Δlogits|={logits_diff:.2e} |Δloss|={loss_diff:.2e} (loss {loss.item():.4f}, "
          f"max|logit| {logits.abs().max().item():.2f})")
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases_dir", type=pathlib.Path)
    parser.add_argument("--tol", type=float, default=1e-5)
    args = parser.parse_args()
    cases = sorted(p for p in args.cases_dir.iterdir() if p.is_dir()) if args.cases_dir.is_dir() else []
    if not cases:
        print(f"reference_gpt.py: no case directories in {args.cases_dir}", file=sys.stderr)
        return 2
    failed = [c.name for c in cases if not check_case(c, args.tol)]
    print(f"{len(cases) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
