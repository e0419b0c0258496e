"""Training speed of ssmax-gpt against the independent eager PyTorch reference, side by side on this machine.

For each round and each normalizer, `ssmax-gpt bench` and the reference (../shared/reference/ref_gpt.py,
nanoGPT-style, same config keys) each time STEPS training steps (forward, backward, clip, AdamW) of the same shape
with the same threads; the rounds interleave the programs, which one runs first alternates from round to round and
the normalizers take turns at running first, so drift in machine speed and a warm or cold cache hit both alike. Each program runs in its own process, whose peak
resident memory is read here the same way for both.
Prints the CPU, the library behind each side's matrix products (ours: the one `bench` chose or was told to use,
src/train/cpu_blas.h; the reference: its torch's BLAS), every measurement, then per normalizer the medians, the
per-round ratios and their median, ssmax-gpt's step time relative to its softmax, and the data loader's share of a
step. --markdown adds the table as Markdown.

Shapes: a config file, or `kjv-tiny` (configs/kjv-tiny-softmax.json at batch 16: 4L/4H/256d, block 256, vocab
4096, RoPE) or `gpt2-124m` (12L/12H/768d, block 256, batch 4, vocab 50257, learned positions, LayerNorm, GELU,
biases, tied embeddings).
Run through scripts/bench_vs_reference.sh, which finds the build and the torch environment.
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NORMALIZERS = ["softmax", "ssmax", "ssmax_bias"]
SHAPES = {
    "kjv-tiny": ("configs/kjv-tiny-softmax.json", {"train": {"batch_size": 16}}),
    "gpt2-124m": ("configs/kjv-tiny-softmax.json", {
        "model": {"n_layer": 12, "n_head": 12, "n_embd": 768, "block_size": 256, "position": "learned",
                  "norm": "layernorm", "mlp": "gelu", "bias": True, "tie_embeddings": True},
        "data": {"tokenizer": {"vocab_size": 50257}},
        "train": {"batch_size": 4}}),
}


def merge(base, extra):
    for key, value in extra.items():
        if isinstance(value, dict):
            merge(base.setdefault(key, {}), value)
        else:
            base[key] = value
    return base


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("shape", nargs="?", default="kjv-tiny", help="config file, kjv-tiny or gpt2-124m")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--compile", action="store_true", help="also time the reference under torch.compile")
    ap.add_argument("--markdown", action="store_true", help="also print the summary as a Markdown table")
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "ssmax-gpt"))
    ap.add_argument("--reference", default=os.path.join(ROOT, "..", "shared", "reference", "ref_gpt.py"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    if a.shape in SHAPES:
        path, extra = SHAPES[a.shape]
        config = merge(json.load(open(os.path.join(ROOT, path))), extra)
    else:
        config = json.load(open(a.shape))
    merge(config, {"device": "cpu", "threads": a.threads})
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(config, f)
        config_path = f.name
    # Peak memory is per process; ru_maxrss of children only rises, so the small peak of one program would hide
    # behind the other's: measure memory in a fresh wrapper process per run.
    def measured(command):
        wrapper = [sys.executable, os.path.abspath(__file__), "--measure-one", "--", *command]
        out = subprocess.run(wrapper, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if out.returncode != 0:
            sys.exit(out.stderr[-3000:])
        result = json.loads(out.stdout)
        return result["line"], result["rss_mb"]

    m = config["model"]
    cpu = cpu_description()
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    print(f"shape {a.shape}: {m['n_layer']}L/{m['n_head']}H/{m['n_embd']}d, block {m['block_size']}, batch "
          f"{config['train']['batch_size']}, vocab {config['data']['tokenizer']['vocab_size']}; {a.rounds} rounds of "
          f"{a.steps} steps; {a.threads} threads")
    print(f"CPU: {cpu} ({platform.node()}; OPENBLAS_CORETYPE={coretype or 'unset'})")
    print(f"reference's matrix products: {reference_blas()}")
    rows = {n: [] for n in NORMALIZERS}
    ours_blas = set()
    try:
        for round_ in range(1, a.rounds + 1):
            # Which normalizer runs first moves from round to round too: a machine that speeds up or slows down
            # within a round (frequency, another process) then does not always fall on the same normalizer.
            shift = (round_ - 1) % len(NORMALIZERS)
            for normalizer in NORMALIZERS[shift:] + NORMALIZERS[:shift]:
                ours_cmd = [a.binary, "bench", config_path, "--normalizers", normalizer, "--steps", str(a.steps),
                            "--warmup", str(a.warmup)]
                ref_cmd = [sys.executable, a.reference, config_path, "--steps", str(a.steps), "--warmup",
                           str(a.warmup), "--threads", str(a.threads), "--normalizer", normalizer]
                if round_ % 2:
                    ours, ours_rss = measured(ours_cmd)
                    eager, eager_rss = measured(ref_cmd)
                else:  # the reference first in every other round
                    eager, eager_rss = measured(ref_cmd)
                    ours, ours_rss = measured(ours_cmd)
                if ours.get("cpu_blas") not in ours_blas:
                    ours_blas.add(ours.get("cpu_blas"))
                    print(f"ssmax-gpt's matrix products: {ours.get('cpu_blas', '?')}")
                compiled = measured(ref_cmd + ["--compile"])[0]["tokens_per_s"] if a.compile else float("nan")
                data_share = ours["data_ms"] / 1000 / ours["median_step_s"]
                rows[normalizer].append((ours["tokens_per_s"], eager["tokens_per_s"], compiled, ours_rss, eager_rss,
                                         ours["median_step_s"], data_share))
                print(f"round {round_} {normalizer:<10} {'ours first' if round_ % 2 else 'ref first '} ssmax-gpt {ours['tokens_per_s']:9.0f} tok/s ({ours_rss:6.0f} MB)"
                      f"   eager {eager['tokens_per_s']:9.0f} tok/s ({eager_rss:6.0f} MB)   compiled {compiled:9.0f} tok/s"
                      f"   data {100 * data_share:.2f} % of a step   ratio {ours['tokens_per_s'] / eager['tokens_per_s']:.2f}",
                      flush=True)
    finally:
        os.unlink(config_path)
    med = statistics.median
    softmax_step = med(r[5] for r in rows["softmax"])
    header = ["normalizer", "ssmax-gpt tok/s", "eager tok/s", "ratio", "compiled tok/s", "ratio", "step vs softmax",
              "peak RSS ours / eager MB", "data % of step"]
    table = []
    for name, r in rows.items():
        ratio_c = med(x[0] / x[2] for x in r) if a.compile else float("nan")
        table.append([name, f"{med(x[0] for x in r):.0f}", f"{med(x[1] for x in r):.0f}",
                      f"{med(x[0] / x[1] for x in r):.2f}", f"{med(x[2] for x in r):.0f}" if a.compile else "—",
                      f"{ratio_c:.2f}" if a.compile else "—", f"{100 * (med(x[5] for x in r) / softmax_step - 1):+.1f} %",
                      f"{med(x[3] for x in r):.0f} / {med(x[4] for x in r):.0f}", f"{100 * med(x[6] for x in r):.2f}"])
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(header)]
    print("medians over rounds; ratio = median of the per-round ratios")
    for row in [header] + table:
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths)))
    for name, r in rows.items():
        print(f"per-round ratios {name}: " + ", ".join(f"{x[0] / x[1]:.2f}" for x in r))
    if a.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---" for _ in header) + "|")
        for row in table:
            print("| " + " | ".join(row) + " |")


def cpu_description():
    """'Intel(R) Xeon(R) Processor, family 6 model 167, AVX2 AVX-512 AMX-BF16' from /proc/cpuinfo."""
    fields = {}
    for line in open("/proc/cpuinfo"):
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
        if not line.strip():
            break
    flags = fields.get("flags", "").split()
    units = [name for flag, name in (("avx2", "AVX2"), ("avx512f", "AVX-512"), ("avx512_bf16", "AVX-512-BF16"),
                                     ("amx_bf16", "AMX-BF16")) if flag in flags]
    return (f"{fields.get('model name', '?')}, family {fields.get('cpu family', '?')} model {fields.get('model', '?')}, "
            + " ".join(units))


def reference_blas():
    """The BLAS behind the reference's torch (it runs in this same Python)."""
    probe = ("import torch, re; c = torch.__config__.show(); "
             "m = re.search(r'Math Kernel Library Version ([0-9.]+)', c); "
             "print(('MKL ' + m.group(1)) if m else ('BLAS_INFO=' + (re.search(r'BLAS_INFO=([^,]*)', c) or [0, '?'])[1]), "
             "'(torch', torch.__version__ + ')')")
    done = subprocess.run([sys.executable, "-c", probe], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return done.stdout.strip() or f"unknown ({done.stderr.strip()[-200:]})"


def measure_one():
    command = sys.argv[sys.argv.index("--") + 1:]
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        sys.exit(f"bench_vs_reference: {' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    line = next(l for l in done.stdout.splitlines() if l.startswith("{"))
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"line": json.loads(line), "rss_mb": rss}))


if __name__ == "__main__":
    if "--measure-one" in sys.argv:
        measure_one()
    else:
        main()
