"""Quantization modes side by side: memory, speed, and quality against the unquantized model.

Each mode runs in its own subprocess (so peak memory is its own) on the same prompts:
HumanEval-Infilling single-line problems, greedy (temperature 0), the same hole budget for
every mode. Printed per mode: weight memory, peak memory during a fill (CPU: the process's
peak resident set while filling, which includes torch itself; CUDA: peak allocated), median
latency of one fixed fill, token agreement of the greedy fills with the first mode (the
unquantized one), and pass@1.

    .venv/bin/python -m benchmarks.quantization [--model DIR] [--device cpu] [--limit 20]
    .venv/bin/python -m benchmarks.quantization --device cuda --modes none int8 nf4
    .venv/bin/python -m benchmarks.quantization --device cuda --synthetic llada-8b  # random

``--synthetic llada-8b`` builds a network of LLaDA-8B-Base's shape and streams random bf16
weights into it layer by layer through the same quantizer (no files, no quality numbers):
weight memory, peak GPU memory while loading and during a forward pass, forward latency.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from benchmarks import humaneval

#: mode name in the table -> (quant mode, dtype)
CPU_MODES = {"fp32": ("none", "float32"), "bf16": ("none", "bfloat16"),
             "torch-int8": ("torch-int8", "float32"), "int8": ("int8", "float32"),
             "nf4": ("nf4", "float32")}
CUDA_MODES = {"bf16": ("none", "bfloat16"), "int8": ("int8", "bfloat16"),
              "nf4": ("nf4", "bfloat16")}


def rss_mib(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    else:
        try:
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM
        except OSError:
            pass


def peak_mib(device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() / 2**20
    return rss_mib("VmHWM")


def budget_for(problem: dict, tokenizer) -> int:
    return max(4, min(24, humaneval.canonical_tokens(problem, tokenizer) + 2))


def run_one(args: argparse.Namespace) -> dict:
    """One mode in this process: load, measure, fill every problem."""
    import quant
    from infill.engine import fill
    from infill.types import Hole, InfillRequest, Length, SamplingOptions

    torch.set_num_threads(args.threads or torch.get_num_threads())
    mode, dtype = args.one.split(":")
    t0 = time.perf_counter()
    den = quant.load(args.model, device=args.device, mode=mode, dtype=dtype)
    load_s = time.perf_counter() - t0
    report = den.quant_report
    options = SamplingOptions(threshold=args.threshold) if args.threshold else SamplingOptions()
    problems = humaneval.load("single-line", args.limit)

    def request(prob: dict) -> InfillRequest:
        text, at = humaneval.document(prob)
        hole = Hole(at, at, Length.auto(budget_for(prob, den.tokenizer)))
        return InfillRequest(text, [hole], language="python", options=options,
                             context_tokens=args.context)

    fixed = request(problems[0])
    fill(fixed, den)  # warm-up
    times = []
    reset_peak(args.device)
    for _ in range(args.repeat):
        t = time.perf_counter()
        passes = fill(fixed, den).forward_passes
        times.append(time.perf_counter() - t)
    peak = peak_mib(args.device)
    tokens, ok = [], 0
    for prob in problems:
        result = fill(request(prob), den)
        tokens.append(result.fills[0].token_ids)
        ok += humaneval.passes(prob, result.fills[0].text)
    return {"mode": report.mode, "dtype": dtype, "weights_mib": report.bytes_after / 2**20,
            "before_mib": report.bytes_before / 2**20, "peak_mib": peak,
            "latency_s": statistics.median(times), "load_s": load_s, "tokens": tokens,
            "passes": passes,
            "pass1": 100 * ok / len(problems), "problems": len(problems)}


def forward(args: argparse.Namespace) -> None:
    """Per-forward latency and logit error of each mode against the first, in one process
    (modes interleaved per repeat, so load on a shared machine hits them alike)."""
    import quant

    problems = humaneval.load("single-line", 4)
    table = CUDA_MODES if args.device.startswith("cuda") else CPU_MODES
    names = args.modes or list(table)
    dens = {n: quant.load(args.model, device=args.device, mode=table[n][0], dtype=table[n][1])
            for n in names}
    tok = next(iter(dens.values())).tokenizer
    text = "".join(p["prompt"] + p["canonical_solution"] + p["suffix"] for p in problems)
    all_ids = [0, *tok(text, add_special_tokens=False)["input_ids"]]
    print(f"model: {args.model}; machine: {humaneval.machine()}; device {args.device}")
    print(f"| mode | {' | '.join(f'{n} tokens ms' for n in args.lengths)} | "
          f"max logit error % | top-1 agreement % |")
    print("|---|" + "---|" * (len(args.lengths) + 2))
    ref = None
    errors = {}
    for n in names:
        ids = torch.tensor([all_ids[:max(args.lengths)]], device=args.device)
        logits = dens[n].logits(ids).float().cpu()
        if ref is None:
            ref = logits
        err = float((logits - ref).abs().max() / ref.abs().max()) * 100
        agree = float((logits.argmax(-1) == ref.argmax(-1)).float().mean()) * 100
        errors[n] = (err, agree)
    times = {(n, L): [] for n in names for L in args.lengths}
    for _ in range(args.repeat):
        for L in args.lengths:
            ids = torch.tensor([all_ids[:L]], device=args.device)
            for n in names:
                t = time.perf_counter()
                dens[n].logits(ids)
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                times[(n, L)].append(time.perf_counter() - t)
    for n in names:
        cells = " | ".join(f"{1000 * statistics.median(times[(n, L)]):.0f}" for L in args.lengths)
        print(f"| {n} | {cells} | {errors[n][0]:.1f} | {errors[n][1]:.1f} |")


def agreement(a: list[list[int]], b: list[list[int]]) -> float:
    same = total = 0
    for x, y in zip(a, b, strict=True):
        n = max(len(x), len(y))
        total += n
        same += sum(1 for i in range(min(len(x), len(y))) if x[i] == y[i])
    return 100 * same / max(total, 1)


def synthetic(args: argparse.Namespace) -> None:
    """An LLaDA-8B-shaped network, random bf16 weights streamed through the quantizer."""
    from torch import nn

    from infill.models.runtime.transformer import Transformer, TransformerConfig
    from quant import Quantizer
    from quant.layers import module_bytes

    cfg = TransformerConfig(vocab_size=126464, hidden_size=4096, intermediate_size=12288,
                            num_layers=32, num_heads=32, num_kv_heads=32, max_position=4096,
                            rope_theta=500000.0)
    if args.synthetic == "llada-smoke":  # the same code on a shape any CPU holds
        cfg = TransformerConfig(vocab_size=1024, hidden_size=256, intermediate_size=768,
                                num_layers=2, num_heads=4, num_kv_heads=4, max_position=512)
    device = torch.device(args.device)
    print(f"synthetic {args.synthetic} on {device}; machine: {humaneval.machine()}")
    print("| mode | weights GiB | peak while loading GiB | peak in a forward GiB | "
          f"forward {args.length} tokens ms |")
    print("|---|---|---|---|---|")
    for mode in args.modes or ["none", "int8", "nf4"]:
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        with torch.device("meta"):
            module = Transformer(cfg)
        reset_peak(args.device)
        q = Quantizer(mode)
        try:
            q.begin(module, Path("."), device, dtype)
        except Exception as e:  # the memory check speaks for itself
            print(f"| {mode} | refused: {e} | | | |")
            continue
        gen = torch.Generator().manual_seed(0)
        for name, p in list(module.named_parameters()):
            t = (torch.randn(p.shape, generator=gen, dtype=torch.float32) * 0.02).to(dtype)
            if not q.place(module, name, t, device, dtype):
                owner, _, leaf = name.rpartition(".")
                module.get_submodule(owner)._parameters[leaf] = nn.Parameter(
                    t.to(device), requires_grad=False)
        q.finish(module, device, dtype)
        module.eval()
        load_peak = peak_mib(args.device) / 1024
        weights = module_bytes(module) / 2**30
        ids = torch.randint(0, cfg.vocab_size, (1, args.length), device=device)
        with torch.inference_mode():
            module(ids)
            reset_peak(args.device)
            times = []
            for _ in range(args.repeat):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t = time.perf_counter()
                module(ids)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - t)
        fwd_peak = peak_mib(args.device) / 1024
        print(f"| {mode} | {weights:.2f} | {load_peak:.2f} | {fwd_peak:.2f} | "
              f"{1000 * statistics.median(times):.0f} |")
        del module, q
        if device.type == "cuda":
            torch.cuda.empty_cache()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--modes", nargs="+", help="table names (fp32 bf16 torch-int8 int8 nf4)")
    ap.add_argument("--limit", type=int, default=20, help="HumanEval single-line problems")
    ap.add_argument("--context", type=int, default=192, help="context tokens around the hole")
    ap.add_argument("--threshold", type=float, default=0.9,
                    help="parallel-decoding threshold (0: one token per step)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of the fixed fill")
    ap.add_argument("--length", type=int, default=256, help="synthetic: tokens per forward")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--synthetic", choices=["llada-8b", "llada-smoke"])
    ap.add_argument("--forward", action="store_true",
                    help="per-forward latency and logit error only (one process)")
    ap.add_argument("--lengths", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.synthetic:
        return synthetic(args)
    if args.one:
        print(json.dumps(run_one(args)))
        return None
    from infill.models.default import resolve_model

    path, note = resolve_model(args.model)
    args.model = str(path)
    if args.forward:
        return forward(args)
    table = CUDA_MODES if args.device.startswith("cuda") else CPU_MODES
    names = args.modes or list(table)
    print(f"model: {path}{' - ' + note if note else ''}")
    print(f"machine: {humaneval.machine()}; device {args.device}")
    print(f"fills: HumanEval single-line, {args.limit} problems, greedy, threshold "
          f"{args.threshold}, context {args.context}")
    rows = {}
    for name in names:
        mode, dtype = table[name]
        cmd = [sys.executable, __file__, "--one", f"{mode}:{dtype}", "--model", args.model,
               "--device", args.device, "--limit", str(args.limit), "--context",
               str(args.context), "--threshold", str(args.threshold), "--repeat",
               str(args.repeat)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
        if done.returncode:
            print(f"{name}: failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        rows[name] = json.loads(done.stdout.strip().splitlines()[-1])
    if not rows:
        return None
    base = rows[names[0]] if names[0] in rows else next(iter(rows.values()))
    print("\n| mode | weight MiB | peak during a fill MiB | fixed fill s (passes) | vs first | "
          f"agreement with {names[0]} % | pass@1 % |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['weights_mib']:.1f} | {r['peak_mib']:.0f} | "
              f"{r['latency_s']:.2f} ({r['passes']}) | "
              f"{r['latency_s'] / base['latency_s']:.2f}x | "
              f"{agreement(r['tokens'], base['tokens']):.1f} | {r['pass1']:.1f} |")
    return None


if __name__ == "__main__":
    main()
