"""Length policies on HumanEval-Infilling: how much a wrong length guess costs.

Every row fills each problem's hole as ``lacuna fill FILE --range A:A`` does with the row's
flags (the CLI's own request builder; the syntax constraint off, so only the length policy
differs), and reports pass@1 (subprocess-run tests), exact match, mean forward passes, mean
fill tokens and the median seconds per fill:
- oracle: exactly the canonical solution's token count (what no editor user knows);
- fixed: exactly ``--fixed`` tokens, whatever the problem;
- absorb, grow, best_of (confidence | likelihood), cal, drafts: an auto hole of ``--budget``
  tokens (``--budget-multi`` for multi-line holes) under that length policy;
- auto: no flag, the model's own policy (the embedded default's is ``drafts``).

    .venv/bin/python -m benchmarks.length --limit 80 --limit-multi 20 --seed 2 [--model DIR]
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

from benchmarks import arg_parser, humaneval
from benchmarks.quality import cli_request, problems
from infill.engine import fill
from infill.types import Hole, Length

AUTO_POLICIES = {
    "absorb": ["--length-policy", "absorb"],
    "grow": ["--length-policy", "grow"],
    "best_of confidence": ["--length-policy", "best_of"],
    "best_of likelihood": ["--length-policy", "best_of"],  # scorer set below: no CLI flag
    "cal": ["--length-policy", "cal"],
    "drafts": ["--length-policy", "drafts"],
    "auto (no flag)": [],
}


def rows_of(args) -> dict[str, tuple[str | int | None, list[str]]]:
    """Row label -> (hole length: 'oracle', a token count, or None for auto; CLI flags)."""
    rows: dict[str, tuple[str | int | None, list[str]]] = {
        "oracle": ("oracle", []), f"fixed {args.fixed}": (args.fixed, [])}
    rows.update({label: (None, flags) for label, flags in AUTO_POLICIES.items()})
    return rows


def main() -> None:
    ap = arg_parser(__doc__)
    ap.add_argument("--limit", type=int, default=20, help="single-line problems")
    ap.add_argument("--limit-multi", type=int, default=None, help="multi-line problems")
    ap.add_argument("--sets", nargs="+", default=["single", "multi"])
    ap.add_argument("--seed", type=int, default=None, help="a random sample (else spread)")
    ap.add_argument("--budget", type=int, default=32)
    ap.add_argument("--budget-multi", type=int, default=64)
    ap.add_argument("--fixed", type=int, default=16)
    ap.add_argument("--only", nargs="+", help="rows to run (labels as printed)")
    ap.add_argument("--json", type=Path, help="write every fill here")
    args = ap.parse_args()
    den = humaneval.open_model(args.model)
    print(f"model: {args.model}; seed {args.seed}; fixed {args.fixed}; budgets "
          f"{args.budget}/{args.budget_multi}; constraint off", flush=True)
    record: dict[str, dict] = {}
    for name in args.sets:
        limit = args.limit if name == "single" else (args.limit_multi or args.limit)
        budget = args.budget if name == "single" else args.budget_multi
        probs = problems(name, limit, 0, args.seed)
        print(f"\n{name}-line, {len(probs)} problems, budget {budget}")
        print("| policy | pass@1 % | exact % | forward passes | mean tokens | median s |")
        print("|---|---|---|---|---|---|", flush=True)
        for label, (length, flags) in rows_of(args).items():
            if args.only and label not in args.only:
                continue
            ok = exact = 0
            passes, tokens, seconds, fills = [], [], [], []
            for prob in probs:
                text, at = humaneval.document(prob)
                if length == "oracle":
                    hole_len = Length.exact(max(1, humaneval.canonical_tokens(prob, den.tokenizer)))
                elif length is None:
                    hole_len = Length.auto(budget)
                else:
                    hole_len = Length.exact(length)
                req = cli_request(["--budget", str(budget), *flags], text,
                                  [Hole(at, at, hole_len)], "python")
                if label == "best_of likelihood":
                    req = replace(req, length=replace(req.length, scorer="likelihood"))
                started = time.perf_counter()
                result = fill(req, den)
                seconds.append(time.perf_counter() - started)
                out = result.fills[0].text
                passed = humaneval.passes(prob, out)
                ok += passed
                exact += humaneval.exact_match(prob, out)
                passes.append(result.forward_passes)
                tokens.append(len(result.fills[0].token_ids))
                fills.append({"task": prob["task_id"], "fill": out, "pass": passed})
            n = len(probs)
            record[f"{name} {label}"] = {"pass@1": ok / n, "exact": exact / n, "fills": fills}
            print(f"| {label} | {100 * ok / n:.1f} | {100 * exact / n:.1f} | "
                  f"{statistics.mean(passes):.1f} | {statistics.mean(tokens):.1f} | "
                  f"{statistics.median(seconds):.2f} |", flush=True)
            if args.json:
                args.json.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
