"""Where ghost text's time goes: the engine's fill of one ghost-text hole per problem, with
the drafter's phases timed apart (context read, beam steps, ranking).

Runs in-process (no server), the model loaded once, the same settings the server's
``textDocument/inlineCompletion`` uses; a warm-up fill first.

    .venv/bin/python -m benchmarks.ghost_profile --limit 20 [--model default]
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from dataclasses import replace
from types import SimpleNamespace

import torch

from benchmarks import arg_parser, humaneval
from infill.drafts import Drafter
from infill.engine import fill
from infill.models import load_denoiser
from infill.models.default import resolve_model
from infill.models.runtime.transformer import ContextCache
from infill.types import Hole, Length
from lsp_server.config import Settings
from lsp_server.requests import make_request

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
    ap = arg_parser(__doc__)
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--configs", nargs="+", default=[""],
                    help="settings compared in one run, interleaved per problem, e.g. "
                         "'' 'context=128,window=12,keep=3' (context: inline context tokens; "
                         "window, keep, width: the drafter's; typed=N: the first N "
                         "characters of the line typed, the request of the keystroke "
                         "before it answered first, its cache kept: a user typing)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    path, _ = resolve_model(args.model)
    denoiser = load_denoiser(path, device="cpu")
    drafter: Drafter = denoiser.drafter
    ContextCache.read = timed("context read", ContextCache.read)
    cold_read = ContextCache.read

    def counted(self, context):  # tokens the read had to run (the rest came cached)
        known = self._ids
        pairs = enumerate(zip(known, context, strict=False))
        same = next((i for i, (a, b) in pairs if a != b), min(len(known), len(context)))
        if not same == len(context) == len(known):
            SPENT["tokens read"] += len(context) - min(same, len(context) - 1)
        return cold_read(self, context)

    ContextCache.read = counted
    Drafter.rank = timed("rank", Drafter.rank)
    Drafter.propose = timed("propose (read + steps)", Drafter.propose)
    base = Settings().for_ghost_text()
    knobs = {"width": drafter.width, "keep": drafter.keep, "window": drafter.window}
    configs = [dict(kv.split("=") for kv in c.split(",") if kv) for c in args.configs]
    problems = humaneval.load("single-line", args.limit)
    rows: dict[int, list[dict]] = defaultdict(list)
    ok: dict[int, int] = defaultdict(int)
    doc = SimpleNamespace(language_id="python")

    def ghost(text: str, at: int, settings: Settings):
        request = make_request(doc, text, [Hole(at, at, Length.auto(settings.inline_budget))],
                               settings, settings.syntax_constraint, ghost=True)
        return fill(request, denoiser)

    for i, prob in enumerate([problems[0], *problems]):
        for c, config in enumerate(configs):
            settings = base
            if "context" in config:
                settings = replace(base, context_tokens=int(config["context"]))
            for name, default in knobs.items():
                setattr(drafter, name, int(config.get(name, default)))
            # typed=0: the whole line missing, the cursor at its start (as lsp_latency.py);
            # typed=N: its indentation and first N characters typed, the line break kept.
            line = prob["canonical_solution"].rstrip("\n")
            body = line.lstrip(" ")
            typed = line[: len(line) - len(body)] + body[: int(config.get("typed", 0))]
            text, at = humaneval.document(prob)
            if config.get("typed"):
                text = text[:at] + typed + "\n" + text[at:]
                at += len(typed)
            drafter._context = ContextCache(drafter.model, drafter.device)  # a cold read
            if config.get("typed"):  # the keystroke before: answered, its context cached
                ghost(text[: at - 1] + text[at:], at - 1, settings)
            SPENT.clear()
            t0 = time.perf_counter()
            result = ghost(text, at, settings)
            total = time.perf_counter() - t0
            if i == 0:
                continue
            rows[c].append({"total": total, **SPENT})
            fill_text = result.fills[0].text
            if config.get("typed"):
                fill_text = typed + fill_text + "\n"
            ok[c] += humaneval.passes(prob, fill_text)
    print_table(args, len(problems), rows, ok)


def print_table(args, n: int, rows: dict[int, list[dict]], ok: dict[int, int]) -> None:
    """The phases' medians per config, as a Markdown table."""
    print(f"model: {args.model}; machine: {humaneval.machine()}; {n} single-line problems "
          f"(spread evenly), ghost-text settings, each config on each problem in turn")
    phases = ["total", "propose (read + steps)", "context read", "rank", "tokens read"]
    print("| config | pass@1 % | " + " | ".join(f"{p} median" + (" s" if p != "tokens read"
                                                                   else "") for p in phases)
          + " |")
    print("|---|---|" + "---|" * len(phases))
    for c, raw in enumerate(args.configs):
        cells = [f"{statistics.median([r.get(p, 0.0) for r in rows[c]]):.3f}"
                 for p in phases]
        print(f"| {raw or 'defaults'} | {100 * ok[c] / n:.1f} | " + " | ".join(cells) + " |")

if __name__ == "__main__":
    main()
