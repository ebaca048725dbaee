"""Syntax constraint benchmark on HumanEval-Infilling (multi-line and random-span).

For each problem the hole is the canonical solution's place (an insertion between
``prompt`` and ``suffix``) with an auto-length budget of the canonical solution's token
count plus a margin, filled three ways: constraint off, on (every step), on (every k-th
step). Reported per dataset and mode:

- new syntax errors: the filled program has a tree-sitter ERROR/MISSING node that the
  reference program (prompt + canonical + suffix) does not have; also ``ast.parse``
  failures, an independent check;
- unsatisfied: fills where the constraint said it ran out of remask budget (those are
  exactly the constrained fills allowed to keep an error);
- pass@1: greedy fill + the problem's tests, run in a subprocess with a timeout;
- ms/step: sampler wall time per step, and the constraint's own time per review.

    .venv/bin/python -m benchmarks.syntax --limit 20

Reads ``/work/shared/bench/data`` (``--data``) in place. Model: ``--model`` (a directory,
``default`` or ``tiny``), else ``$LACUNA_MODEL``, else the embedded default.
"""

from __future__ import annotations

import argparse
import ast
import sys
import time
from collections import Counter
from pathlib import Path

import torch

from benchmarks import arg_parser, humaneval
from grammars.constraint import (
    SyntaxConstraint,
    away_from_seams,
    syntax_errors,
)
from grammars.registry import parser_for
from infill.engine import fill
from infill.types import Hole, InfillRequest, Length, SamplingOptions

DATASETS = ("multi-line", "random-span")


def error_count(parser, text: str) -> int:
    return len(syntax_errors(parser.parse(text.encode("utf-8"))))


def run(args: argparse.Namespace) -> dict:
    from infill.models import load_denoiser
    from infill.models.default import resolve_model

    model_dir, note = resolve_model(args.model)
    denoiser = load_denoiser(model_dir, device="cpu")
    tok = denoiser.tokenizer
    parser = parser_for("python")
    modes = [("off", None), ("on, every step", 1)]
    if args.every > 1:
        modes.append((f"on, every {args.every} steps", args.every))
    table: dict[tuple[str, str], Counter] = {}
    exceptions: dict[tuple[str, str], list[str]] = {}
    for dataset in DATASETS:
        if dataset not in args.datasets:
            continue
        problems = humaneval.load(dataset, args.limit, args.data, args.stride)
        for prob in problems:
            text = prob["prompt"] + prob["suffix"]
            at = len(prob["prompt"])
            want = len(tok(prob["canonical_solution"], add_special_tokens=False)["input_ids"])
            budget = min(args.max_budget, max(4, want + args.margin))
            reference = prob["prompt"] + prob["canonical_solution"] + prob["suffix"]
            base = error_count(parser, reference)
            for label, every in modes:
                t = table.setdefault((dataset, label), Counter())
                constraint = SyntaxConstraint("python", every=every) if every else None
                request = InfillRequest(
                    text, [Hole(at, at, Length.auto(budget))], "python",
                    SamplingOptions(steps=args.steps, max_remask_rounds=args.rounds),
                    constrain=constraint is not None,
                )
                started = time.perf_counter()
                result = fill(request, denoiser, constraint=constraint)
                t["seconds"] += time.perf_counter() - started
                t["n"] += 1
                t["steps"] += result.steps
                t["remasked"] += result.remasked
                program = prob["prompt"] + result.fills[0].text + prob["suffix"]
                bad = error_count(parser, program) > base
                t["new_errors"] += bad
                try:
                    ast.parse(program)
                except SyntaxError:
                    t["ast_errors"] += 1
                if result.constraint_satisfied is False:
                    t["unsatisfied"] += 1
                    t["unsatisfied_with_error"] += bad
                elif constraint is not None and bad:
                    # Why a fill the constraint accepted still differs from the reference:
                    # the document without the span is broken away from the hole (baseline).
                    data = text.encode("utf-8")
                    hb = len(prob["prompt"].encode("utf-8"))
                    base = away_from_seams(syntax_errors(parser.parse(data)), data, [(hb, hb)])
                    why = "baseline" if base else "UNEXPLAINED"
                    exceptions.setdefault((dataset, label), []).append(f"{prob['task_id']} ({why})")
                if constraint is not None:
                    t["review_seconds"] += constraint.stats.seconds
                    t["reviews"] += constraint.stats.reviews
                check = f"{program}\n{prob['test']}\ncheck({prob['entry_point']})\n"
                t["passed"] += humaneval.run_program(check, args.timeout)
            print(f"  {dataset} {prob['task_id']} done", file=sys.stderr, flush=True)
    return {"model": str(model_dir), "note": note, "table": table, "exceptions": exceptions}


def render(out: dict, args: argparse.Namespace) -> str:
    lines = [
        f"model: {out['model']}" + (f" ({out['note']})" if out["note"] else ""),
        f"problems: first {args.limit} per dataset (stride {args.stride}); budget = canonical "
        f"tokens + {args.margin} (max {args.max_budget}); steps = "
        f"{args.steps or 'one per mask'}; remask rounds {args.rounds}; torch threads "
        f"{torch.get_num_threads()}",
        "",
        "| dataset | constraint | n | new syntax errors | ast.parse fails | unsatisfied "
        "| pass@1 | ms/step | constraint ms/review | remasked/fill |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (dataset, label), t in out["table"].items():
        n, reviews = t["n"], t["reviews"]
        per_review = f"{1000 * t['review_seconds'] / reviews:.2f}" if reviews else "-"
        lines.append(
            f"| {dataset} | {label} | {n} | {t['new_errors'] / n:.0%} ({t['new_errors']}) "
            f"| {t['ast_errors'] / n:.0%} | {t['unsatisfied']} | {t['passed'] / n:.1%} "
            f"| {1000 * t['seconds'] / max(t['steps'], 1):.1f} | {per_review} "
            f"| {t['remasked'] / n:.1f} |"
        )
    if out["exceptions"]:
        lines.append("")
        for (dataset, label), ids in out["exceptions"].items():
            lines.append(f"satisfied but with a new error ({dataset}, {label}): {ids}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = arg_parser(__doc__)
    p.add_argument("--data", type=Path, default=humaneval.DATA)
    p.add_argument("--limit", type=int, default=20, help="problems per dataset")
    p.add_argument("--stride", type=int, default=1, help="take every n-th problem")
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    p.add_argument("--every", type=int, default=4, help="also run with review every k steps")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--margin", type=int, default=8)
    p.add_argument("--max-budget", type=int, default=160)
    p.add_argument("--rounds", type=int, default=4, help="max_remask_rounds")
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = run(args)
    print(render(out, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
