#!/usr/bin/env python3
"""How to run attention over packed documents: the kernel choice behind model.attention.document_mask, measured.

For windows packed with documents of random length (uniform 1 … 2·MEAN−1 tokens), times forward + backward of
  causal   one causal SDPA call over the whole window (no masking: what document_mask=false computes)
  masked   one SDPA call with the block-diagonal causal mask (what src/model/attention.cpp does)
  perdoc   one causal SDPA call per document (the alternative the choice was measured against)
with the ATen kernels the C++ build links (torch from the project's environment), and checks that masked and
perdoc agree. Prints one JSON line per shape. Usage:
  PYTHON scripts/bench_document_mask.py [--threads N] [--device cpu|cuda] [--reps 20]
"""
import argparse
import json
import platform
import random
import time

import torch
import torch.nn.functional as F


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def layout(B, T, mean, rng):
    """Document segments per row and the positions within documents ([B, T])."""
    segments, positions = [], torch.zeros(B, T, dtype=torch.long)
    for b in range(B):
        row, start = [], 0
        while start < T:
            end = min(T, start + rng.randint(1, 2 * mean - 1))
            row.append((start, end))
            positions[b, start:end] = torch.arange(end - start)
            start = end
        segments.append(row)
    return segments, positions


def time_it(fn, q, k, v, reps, device):
    for _ in range(3):
        fn().sum().backward()
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(reps):
        fn().sum().backward()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / reps * 1e3


def run(B, H, T, d, mean, reps, device, dtype):
    rng = random.Random(0)
    q, k, v = (torch.randn(B, H, T, d, device=device, dtype=dtype, requires_grad=True) for _ in range(3))
    segments, positions = layout(B, T, mean, rng)
    i = torch.arange(T)
    visible = ((i[None, None, :] <= i[None, :, None]) & (i[None, None, :] >= (i[None, :] - positions)[:, :, None]))
    visible = visible[:, None].to(device)

    def causal():
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    def masked():
        return F.scaled_dot_product_attention(q, k, v, attn_mask=visible)

    def perdoc():
        rows = []
        for b in range(B):
            rows.append(torch.cat([F.scaled_dot_product_attention(q[b:b + 1, :, s:e], k[b:b + 1, :, s:e],
                                                                  v[b:b + 1, :, s:e], is_causal=True)
                                   for s, e in segments[b]], 2))
        return torch.cat(rows, 0)

    ms = {name: time_it(fn, q, k, v, reps, device) for name, fn in
          (("causal", causal), ("masked", masked), ("perdoc", perdoc))}
    with torch.no_grad():
        diff = (masked() - perdoc()).abs().max().item()
    return {"B": B, "H": H, "T": T, "head_dim": d, "mean_document": mean,
            "documents_per_row": sum(len(s) for s in segments) / B,
            **{f"{name}_ms": round(t, 2) for name, t in ms.items()},
            "masked_vs_causal": round(ms["masked"] / ms["causal"] - 1, 3),
            "perdoc_vs_masked": round(ms["perdoc"] / ms["masked"], 2), "max_abs_diff": diff}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
    machine = torch.cuda.get_device_name() if args.device == "cuda" else cpu_name()
    shapes = [(8, 4, 256, 64, m) for m in (1000, 256, 64, 16)] + [(4, 8, 1024, 64, m) for m in (1000, 256, 64)]
    for B, H, T, d, mean in shapes:
        result = run(B, H, T, d, mean, args.reps if T <= 256 else max(3, args.reps // 4), args.device, dtype)
        print(json.dumps({"machine": machine, "threads": torch.get_num_threads(), "torch": torch.__version__,
                          **result}), flush=True)


if __name__ == "__main__":
    main()
