"""Where ghost text's time goes: the engine's fill of one ghost-text hole per problem, with
the drafter's phases timed apart (context read, beam steps, ranking).

Runs in-process (no server), the model loaded once, the same settings the server's
``textDocument/inlineCompletion`` uses; a warm-up fill first.

    .venv/bin/python benchmarks/ghost_profile.py --limit 20 [--model default]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))

import humaneval  # noqa: E402
import torch  # noqa: E402

from infill.drafts import Drafter  # noqa: E402
from infill.engine import fill  # noqa: E402
from infill.models import load_denoiser  # noqa: E402
from infill.models.default import resolve_model  # noqa: E402
from infill.models.transformer import ContextCache  # noqa: E402
from infill.types import Hole, Length  # noqa: E402
from lsp_server.config import Settings  # noqa: E402
from lsp_server.requests import make_request  # noqa: E402

SPENT: dict[str, float] = defaultdict(float)


def timed(name: str, fn):
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            SPENT[name] += time.perf_counter() - t0
    return wrapper


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--configs", nargs="+", default=[""],
                    help="settings compared in one run, interleaved per problem, e.g. "
                         "'' 'context=128,window=12,keep=3' (context: inline context tokens; "
                         "window, keep, width: the drafter's)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    path, _ = resolve_model(args.model)
    denoiser = load_denoiser(path, device="cpu")
    drafter: Drafter = denoiser.drafter
    ContextCache.read = timed("context read", ContextCache.read)
    Drafter.rank = timed("rank", Drafter.rank)
    Drafter.propose = timed("propose (read + steps)", Drafter.propose)
    base = Settings().for_ghost_text()
    knobs = {"width": drafter.width, "keep": drafter.keep, "window": drafter.window}
    configs = [dict(kv.split("=") for kv in c.split(",") if kv) for c in args.configs]
    problems = humaneval.load("single-line", args.limit)
    rows: dict[int, list[dict]] = defaultdict(list)
    ok: dict[int, int] = defaultdict(int)
    for i, prob in enumerate([problems[0], *problems]):
        text, at = humaneval.document(prob)
        doc = SimpleNamespace(language_id="python")
        for c, config in enumerate(configs):
            settings = base
            if "context" in config:
                settings = replace(base, context_tokens=int(config["context"]))
            for name, default in knobs.items():
                setattr(drafter, name, int(config.get(name, default)))
            request = make_request(doc, text,
                                   [Hole(at, at, Length.auto(settings.inline_budget))],
                                   settings, settings.syntax_constraint, ghost=True)
            drafter._context = ContextCache(drafter.model, drafter.device)  # a cold read
            SPENT.clear()
            t0 = time.perf_counter()
            result = fill(request, denoiser)
            total = time.perf_counter() - t0
            if i == 0:
                continue
            rows[c].append({"total": total, **SPENT})
            ok[c] += humaneval.passes(prob, result.fills[0].text)
    n = len(problems)
    print(f"model: {args.model}; machine: {humaneval.machine()}; {n} single-line problems "
          f"(spread evenly), ghost-text settings, each config on each problem in turn")
    phases = ["total", "propose (read + steps)", "context read", "rank"]
    print("| config | pass@1 % | " + " | ".join(f"{p} median s" for p in phases) + " |")
    print("|---|---|" + "---|" * len(phases))
    for c, raw in enumerate(args.configs):
        cells = [f"{statistics.median([r.get(p, 0.0) for r in rows[c]]):.3f}"
                 for p in phases]
        print(f"| {raw or 'defaults'} | {100 * ok[c] / n:.1f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
