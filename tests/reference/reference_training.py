#!/usr/bin/env python3
"""Training parity: every parameter's gradient and several AdamW steps of ssmax-gpt against an independent float64
computation (the forward pass of reference_gpt.py, autograd, torch.optim.AdamW), as llm.c's test_gpt2 does.

Usage: reference_training.py CASES_DIR [--grad-tol 1e-4] [--loss-tol 1e-5] [--weight-tol 2e-5]

Every sub-directory of CASES_DIR is one case, written by tests/test_reference_parity.cpp:
  model.safetensors, model.config.json   `ssmax-gpt export` of the model before training (the run's config: model,
                                          optim)
  training.safetensors                    idx_K, targets_K [B, T] int64 (and positions_K for packed documents) for
                                          steps K = 0 … S−1; what ssmax-gpt computed: grad/NAME (step 0, before
                                          clipping), loss [S], after_K/NAME (every parameter after step K)
The reference trains the exported weights on the same batches: the loss, backward, clip of the gradients' global L2
norm to optim.grad_clip, AdamW with weight decay on tensors of rank >= 2 only (s, b, norm gains and biases are not
decayed), s frozen when model.attention.learn_s is false. Compared: the gradients at step 0 (max |Δ| relative to the
largest gradient of the tensor, floored at 1e-3), the loss at every step, every weight after every step (absolute).
Prints one line per case; exits 1 when a case differs by more than its tolerance, 2 on a usage error.
"""
import argparse
import json
import pathlib
import sys

import torch
from safetensors.torch import load_file

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from reference_gpt import forward  # noqa: E402  the same independent forward pass the logits are checked with


def check_case(case_dir, grad_tol, loss_tol, weight_tol):
    config = json.loads((case_dir / "model.config.json").read_text())["config"]
    cfg, optim = config["model"], config["optim"]
    weights = {k: t.to(torch.float64) for k, t in load_file(str(case_dir / "model.safetensors")).items()}
    ours = load_file(str(case_dir / "training.safetensors"))
    steps = ours["loss"].numel()
    frozen = {k for k in weights if k.endswith("normalizer.s") and not cfg["attention"].get("learn_s", True)}
    params = {k: t.clone().requires_grad_(k not in frozen) for k, t in weights.items()}
    trainable = [t for k, t in params.items() if k not in frozen]
    decay = [t for k, t in params.items() if k not in frozen and t.dim() >= 2]
    no_decay = [t for k, t in params.items() if k not in frozen and t.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": optim["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=optim["lr"], betas=(optim["beta1"], optim["beta2"]), eps=optim["eps"])
    worst = {"grad": 0.0, "loss": 0.0, "weight": 0.0}
    missing = []
    for k in range(steps):
        idx, targets = ours[f"idx_{k}"], ours[f"targets_{k}"]
        B, T = idx.shape
        packed = f"positions_{k}" in ours and cfg["attention"].get("document_mask", False)
        pos = ours[f"positions_{k}"] if packed else torch.arange(T).expand(B, T)
        opt.zero_grad(set_to_none=True)
        logits = forward(idx, params, cfg, pos)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        loss.backward()
        worst["loss"] = max(worst["loss"], abs(loss.item() - ours["loss"][k].item()))
        if k == 0:
            for name, t in params.items():
                theirs = ours.get(f"grad/{name}")
                if t.grad is None or theirs is None:
                    if (t.grad is None) != (theirs is None):
                        missing.append(name)
                    continue
                scale = max(t.grad.abs().max().item(), 1e-3)
                worst["grad"] = max(worst["grad"], (t.grad - theirs.to(torch.float64)).abs().max().item() / scale)
        if optim["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(trainable, optim["grad_clip"])
        opt.step()
        for name, t in params.items():
            theirs = ours[f"after_{k}/{name}"].to(torch.float64)
            worst["weight"] = max(worst["weight"], (t.detach() - theirs).abs().max().item())
    ok = (not missing and worst["grad"] <= grad_tol and worst["loss"] <= loss_tol and worst["weight"] <= weight_tol)
    print(f"{'PASS' if ok else 'FAIL'} {case_dir.name}: {steps} steps, max relative |Δgrad| {worst['grad']:.2e}, "
          f"max |Δloss| {worst['loss']:.2e}, max |Δweight| {worst['weight']:.2e}"
          + (f"; gradients of {missing} on one side only" if missing else ""))
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases_dir", type=pathlib.Path)
    parser.add_argument("--grad-tol", type=float, default=1e-4)
    parser.add_argument("--loss-tol", type=float, default=1e-5)
    parser.add_argument("--weight-tol", type=float, default=2e-5)
    args = parser.parse_args()
    cases = sorted(p for p in args.cases_dir.iterdir() if p.is_dir()) if args.cases_dir.is_dir() else []
    if not cases:
        print(f"reference_training.py: no case directories in {args.cases_dir}", file=sys.stderr)
        return 2
    failed = [c.name for c in cases if not check_case(c, args.grad_tol, args.loss_tol, args.weight_tol)]
    print(f"{len(cases) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
