"""Plain sampler against the fast one, same prompts, one process.

Plain: steps = tokens, low-confidence remasking, no cache (LLaDA's sampler).
Fast: Fast-dLLM's confidence-threshold parallel decoding, with and without the dual
key/value cache, and with the grow length policy. Printed per setting: median and p90
latency, forward passes, fill tokens per pass (the tokens kept in the fill, end tokens
trimmed, over the passes spent), pass@1 (subprocess-run tests), and ratios against plain.

    .venv/bin/python -m benchmarks.speed --limit 20 [--model DIR] [--sets single-line multi-line]
        [--budget 32]     # the editor's auto budget instead of the reference's length
    .venv/bin/python -m benchmarks.speed --passes     # one pass: full against cached, by size
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from benchmarks import humaneval
from infill.engine import fill
from infill.types import (
    Hole,
    InfillRequest,
    Length,
    LengthOptions,
    SamplingOptions,
)

ABSORB, GROW = LengthOptions(policy="absorb"), LengthOptions(policy="grow")
#: name -> (sampling, length policy). "plain" is LLaDA's sampler on the whole budget; the
#: rest add Fast-dLLM's threshold, the dual cache, and the grow policy (fewer masks to fill
#: when the line is short: the inline preset).
SETTINGS = {
    "plain": (SamplingOptions(), ABSORB),
    "threshold 0.9": (SamplingOptions(threshold=0.9), ABSORB),
    "threshold 0.9 + cache": (SamplingOptions(threshold=0.9, cache=True), ABSORB),
    "threshold 0.7 + cache": (SamplingOptions(threshold=0.7, cache=True), ABSORB),
    "threshold 0.9 + cache + grow": (SamplingOptions(threshold=0.9, cache=True), GROW),
}


def budget_for(problem: dict, tokenizer) -> int:
    """The canonical solution's token count rounded up to a multiple of 8: the same hole
    for every setting, close to what an editor user would give."""
    return max(8, -(-humaneval.canonical_tokens(problem, tokenizer) // 8) * 8)


def pass_costs(den, lengths=(128, 256, 512), hole: int = 16, repeats: int = 5) -> None:
    """Median cost of one pass over a canvas with a ``hole``-token hole in its middle: the
    full pass against the cached one (only the hole's rows recomputed)."""
    print("| canvas tokens | hole tokens | full pass ms | cached pass ms | full / cached |")
    print("|---|---|---|---|---|")
    gen = torch.Generator().manual_seed(0)
    for n in lengths:
        ids = torch.randint(100, den.tokens, (1, n), generator=gen)
        ids[0, : len(den.prefix_ids)] = torch.tensor(den.prefix_ids)
        pos = torch.arange(n // 2, n // 2 + hole)
        ids[0, pos] = den.mask_id
        _, cache = den.prefill(ids, pos)
        full, cached = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            den.logits(ids, positions=pos)
            full.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            den.cached_logits(ids, pos, cache, pos)
            cached.append(time.perf_counter() - t0)
        f, c = statistics.median(full) * 1e3, statistics.median(cached) * 1e3
        print(f"| {n} | {hole} | {f:.0f} | {c:.0f} | {f / c:.1f}x |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model")
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--sets", nargs="+", default=["single-line", "multi-line"])
    ap.add_argument("--context", type=int, default=256, help="context tokens around the hole")
    ap.add_argument("--budget", type=int, default=None,
                    help="auto-hole budget in tokens (default: the reference's length "
                         "rounded up to 8; 32 is what an editor's [MASK] gets)")
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS))
    ap.add_argument("--passes", action="store_true", help="only the per-pass cost table")
    args = ap.parse_args()
    den = humaneval.open_model(args.model)
    if args.passes:
        pass_costs(den)
        return
    for name in args.sets:
        problems = humaneval.load(name, args.limit)
        print(f"\n{name}, {len(problems)} problems, context {args.context} tokens, budget "
              f"{args.budget or 'reference length rounded up to 8'}")
        print("| setting | median s | p90 s | passes | fill tokens/pass | pass@1 % |"
              " latency vs plain | passes vs plain |")
        print("|---|---|---|---|---|---|---|---|", flush=True)
        base = None
        for setting in args.settings:
            times, passes, tokens, ok = [], [], [], 0
            for prob in problems:
                text, at = humaneval.document(prob)
                budget = args.budget or budget_for(prob, den.tokenizer)
                hole = Hole(at, at, Length.auto(budget))
                options, length = SETTINGS[setting]
                req = InfillRequest(text, [hole], language="python", options=options,
                                    length=length, context_tokens=args.context)
                t0 = time.perf_counter()
                result = fill(req, den)
                times.append(time.perf_counter() - t0)
                passes.append(result.forward_passes)
                tokens.append(len(result.fills[0].token_ids))
                ok += humaneval.passes(prob, result.fills[0].text)
            r = {
                "median": statistics.median(times),
                "p90": humaneval.percentile(times, 0.9),
                "passes": statistics.mean(passes),
                "tok/pass": sum(tokens) / sum(passes),
                "pass@1": 100 * ok / len(problems),
            }
            base = base or r
            print(f"| {setting} | {r['median']:.2f} | {r['p90']:.2f} | {r['passes']:.1f} | "
                  f"{r['tok/pass']:.2f} | {r['pass@1']:.1f} | "
                  f"{r['median'] / base['median']:.2f}x | {r['passes'] / base['passes']:.2f}x |",
                  flush=True)

if __name__ == "__main__":
    main()
