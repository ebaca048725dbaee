"""Length policies on HumanEval-Infilling: how much a wrong length guess costs.

Per set and policy: pass@1 (subprocess-run tests), exact match, mean forward passes.
- oracle: exactly the canonical solution's token count (what no editor user knows);
- fixed: exactly ``--fixed`` tokens, whatever the problem;
- absorb: ``--budget`` masks, unused ones absorbed by end tokens and trimmed;
- grow: start short, open masks while the model doubts the end, close after an end;
- best_of (confidence | likelihood): candidate lengths in one batch, best score kept.

    .venv/bin/python benchmarks/length.py --limit 20 [--model DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import humaneval  # noqa: E402

from infill.engine import fill  # noqa: E402
from infill.types import Hole, InfillRequest, Length, LengthOptions, SamplingOptions  # noqa: E402


def policies(args) -> dict[str, tuple]:
    return {
        "oracle": ("oracle", LengthOptions()),
        f"fixed {args.fixed}": (Length.exact(args.fixed), LengthOptions()),
        "absorb": (Length.auto(args.budget), LengthOptions("absorb")),
        "grow": (Length.auto(args.budget), LengthOptions("grow")),
        "best_of confidence": (Length.auto(args.budget),
                               LengthOptions("best_of", scorer="confidence")),
        "best_of likelihood": (Length.auto(args.budget),
                               LengthOptions("best_of", scorer="likelihood")),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model")
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--sets", nargs="+", default=["single-line", "multi-line"])
    ap.add_argument("--budget", type=int, default=32)
    ap.add_argument("--fixed", type=int, default=16)
    ap.add_argument("--context", type=int, default=256)
    ap.add_argument("--threshold", type=float, default=None,
                    help="sample with this confidence threshold (default: plain schedule)")
    ap.add_argument("--only", nargs="+", help="policies to run (names as printed)")
    args = ap.parse_args()
    den = humaneval.open_model(args.model)
    options = SamplingOptions(threshold=args.threshold)
    for name in args.sets:
        problems = humaneval.load(name, args.limit)
        print(f"\n{name}, {len(problems)} problems, budget {args.budget}")
        print("| policy | pass@1 % | exact % | forward passes | mean tokens |")
        print("|---|---|---|---|---|")
        for label, (length, lopts) in policies(args).items():
            if args.only and label not in args.only:
                continue
            ok = exact = 0
            passes, tokens = [], []
            for prob in problems:
                text, at = humaneval.document(prob)
                if length == "oracle":
                    n = humaneval.canonical_tokens(prob, den.tokenizer)
                    hole_len = Length.exact(max(1, n))
                else:
                    hole_len = length
                req = InfillRequest(text, [Hole(at, at, hole_len)], language="python",
                                    options=options, context_tokens=args.context,
                                    length=lopts)
                result = fill(req, den)
                out = result.fills[0].text
                ok += humaneval.passes(prob, out)
                exact += humaneval.exact_match(prob, out)
                passes.append(result.forward_passes)
                tokens.append(len(result.fills[0].token_ids))
            n = len(problems)
            print(f"| {label} | {100 * ok / n:.1f} | {100 * exact / n:.1f} | "
                  f"{statistics.mean(passes):.1f} | {statistics.mean(tokens):.1f} |", flush=True)


if __name__ == "__main__":
    main()
