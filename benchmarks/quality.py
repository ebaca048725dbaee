"""Fill quality of the embedded default: HumanEval-Infilling pass@1 and a held-out prose set.

    .venv/bin/python benchmarks/quality.py --models baseline default --limit 20

Models: ``baseline`` (SmolLM2-135M converted and made bidirectional, no training),
``default`` (the same plus the shipped adapter), ``adapter:FILE`` (the base plus any
adapter file, e.g. a training checkpoint), or a model directory.

* HumanEval single-line and multi-line infilling (``/work/shared/bench/data``): the hole
  is an ``auto`` hole at the document position of the reference, filled with the default
  sampler settings (one step per masked token, low-confidence remasking, greedy); the
  program ``prompt + fill + suffix + test + check(entry_point)`` runs in a separate
  ``python -I`` process in a temporary directory with a timeout and a memory limit: pass@1
  is the share that exits cleanly. Exact match: the fill equals the reference after
  stripping surrounding whitespace. ``--limit`` problems are taken at an even stride over
  the file, so they span many different HumanEval tasks.
* Prose: held-out Markdown/reST files of the training corpus (never trained on, see
  ``training/corpus.py``); in a paragraph one sentence is masked; exact match and token
  accuracy (share of reference tokens reproduced at their position).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import humaneval  # noqa: E402

from infill.engine import fill  # noqa: E402
from infill.types import Hole, InfillRequest, Length, SamplingOptions  # noqa: E402

DATA = humaneval.DATA
#: This script's short set names, as humaneval.py calls them.
SETS = {"single": "single-line", "multi": "multi-line"}


def load_model(spec: str):
    from infill.models import load_denoiser
    from infill.models.smollm2 import base_dir, default_dir

    if spec == "baseline":
        path = base_dir()
    elif spec == "default":
        path = default_dir()
    elif spec.startswith("adapter:"):
        path = default_dir(adapter=Path(spec[len("adapter:"):]))
    else:
        path = Path(spec)
    return path, load_denoiser(path, device="cpu")


def run_humaneval(den, name: str, limit: int, budget: int, context: int | None,
                  timeout: float, options: SamplingOptions, show: int = 0,
                  constraint=None, offset: int = 0) -> dict:
    rows = humaneval.load(SETS[name], limit, DATA, offset=offset)
    passed = exact = 0
    seconds = 0.0
    samples = []
    for i, row in enumerate(rows):
        text = row["prompt"] + row["suffix"]
        hole = Hole(len(row["prompt"]), len(row["prompt"]), Length.auto(budget))
        req = InfillRequest(text=text, holes=[hole], language="python", options=options,
                            context_tokens=context, constrain=constraint is not None)
        res = fill(req, den, constraint=constraint)
        seconds += res.seconds
        got = res.fills[0].text
        ok = humaneval.passes(row, got, timeout)
        passed += ok
        exact += got.strip() == row["canonical_solution"].strip()
        if i < show:
            samples.append({"task": row["task_id"], "fill": got,
                            "reference": row["canonical_solution"], "pass": ok})
        print(f"  {name} {i + 1}/{len(rows)} {row['task_id']} pass={ok} "
              f"fill={got[:60]!r}", file=sys.stderr, flush=True)
    n = max(len(rows), 1)
    return {"n": len(rows), "pass@1": passed / n, "exact": exact / n,
            "seconds_per_fill": seconds / n, "samples": samples}


def prose_items(limit: int, seed: int = 0) -> list[dict]:
    """Sentence holes in held-out Markdown/reST paragraphs (deterministic)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from training.corpus import list_files

    cache = Path(tempfile.gettempdir()) / "lacuna-corpus-files.json"
    files = [f for f in list_files(cache=cache) if f["heldout"] and f["lang"] == "markdown"]
    rng = random.Random(seed)
    rng.shuffle(files)
    items = []
    for f in files:
        try:
            text = Path(f["path"]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        paras = [m for m in re.finditer(r"(?:[^\n]+\n)+", text)
                 if len(re.findall(r"[a-z]{2,}[.!?] ", m.group(0))) >= 2
                 and not m.group(0).lstrip().startswith(("*", "-", "|", "..", "#", ">", ":"))]
        if not paras:
            continue
        para = rng.choice(paras)
        body = para.group(0)
        cuts = [0] + [m.end() for m in re.finditer(r"(?<=[a-z]{2}[.!?]) ", body)]
        if len(cuts) < 3:
            continue
        j = rng.randrange(1, len(cuts) - 1)
        a, b = para.start() + cuts[j], para.start() + cuts[j + 1]
        sentence = text[a:b]
        if not 20 <= len(sentence) <= 140 or "\n\n" in sentence:
            continue
        lo = max(0, a - 600)
        items.append({"file": f["path"], "text": text[lo:b + 600], "start": a - lo,
                      "end": b - lo, "reference": sentence})
        if len(items) >= limit:
            break
    return items


def run_prose(den, limit: int, budget: int, options: SamplingOptions, show: int = 0) -> dict:
    tok = den.tokenizer
    items = prose_items(limit)
    exact = 0
    acc_hits = acc_total = 0
    samples = []
    seconds = 0.0
    for i, it in enumerate(items):
        text = it["text"][: it["start"]] + it["text"][it["end"]:]
        hole = Hole(it["start"], it["start"], Length.auto(budget))
        res = fill(InfillRequest(text=text, holes=[hole], language="markdown",
                                 options=options), den)
        seconds += res.seconds
        got = res.fills[0].text
        exact += got.strip() == it["reference"].strip()
        ref_ids = tok(it["reference"], add_special_tokens=False)["input_ids"]
        got_ids = res.fills[0].token_ids
        acc_hits += sum(1 for x, y in zip(ref_ids, got_ids, strict=False) if x == y)
        acc_total += len(ref_ids)
        if i < show:
            samples.append({"fill": got, "reference": it["reference"]})
        print(f"  prose {i + 1}/{len(items)} fill={got[:60]!r}", file=sys.stderr, flush=True)
    n = max(len(items), 1)
    return {"n": len(items), "exact": exact / n, "token_accuracy": acc_hits / max(acc_total, 1),
            "seconds_per_fill": seconds / n, "samples": samples}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["baseline", "default"])
    ap.add_argument("--sets", nargs="+", default=["single", "multi", "prose"],
                    choices=["single", "multi", "prose"])
    ap.add_argument("--limit", type=int, default=20, help="problems per set")
    ap.add_argument("--limit-multi", type=int, default=None)
    ap.add_argument("--offset", type=int, default=0,
                    help="first HumanEval problem of the stride (another sample of the set)")
    ap.add_argument("--budget", type=int, default=32, help="auto-hole budget, single/prose")
    ap.add_argument("--budget-multi", type=int, default=64)
    ap.add_argument("--context", type=int, default=None,
                    help="context tokens around the hole (default: all that fits)")
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--constrain", action="store_true",
                    help="HumanEval fills under the tree-sitter syntax constraint (what the "
                         "language server does by default for explicit fills)")
    ap.add_argument("--block-length", type=int, default=None,
                    help="semi-autoregressive blocks of this many masks (default: one block)")
    ap.add_argument("--threshold", type=float, default=None,
                    help="commit every token at least this confident (Fast-dLLM)")
    ap.add_argument("--show", type=int, default=3, help="sample fills kept per set")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    # The default sampler settings, unless a flag names another.
    options = SamplingOptions(block_length=args.block_length, threshold=args.threshold)
    constraint = None
    if args.constrain:
        from grammars import syntax_constraint

        constraint = syntax_constraint("python")
    results = {}
    for spec in args.models:
        started = time.perf_counter()
        path, den = load_model(spec)
        out = {"model": str(path), "load_seconds": time.perf_counter() - started}
        if "single" in args.sets:
            out["single"] = run_humaneval(den, "single", args.limit, args.budget,
                                          args.context, args.timeout, options, args.show,
                                          constraint, args.offset)
        if "multi" in args.sets:
            out["multi"] = run_humaneval(den, "multi", args.limit_multi or args.limit,
                                         args.budget_multi, args.context, args.timeout,
                                         options, args.show, constraint, args.offset)
        if "prose" in args.sets:
            out["prose"] = run_prose(den, args.limit, args.budget, options, args.show)
        results[spec] = out
        print(json.dumps({spec: {k: v for k, v in out.items()}}, indent=1), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print("\n| model | single-line pass@1 | single EM | multi-line pass@1 | multi EM "
          "| prose EM | prose token acc |")
    print("|---|---|---|---|---|---|---|")
    for spec, out in results.items():
        def cell(s, k, out=out):
            return f"{out[s][k]:.1%} ({out[s]['n']})" if s in out else "-"
        print(f"| {spec} | {cell('single', 'pass@1')} | {cell('single', 'exact')} | "
              f"{cell('multi', 'pass@1')} | {cell('multi', 'exact')} | "
              f"{cell('prose', 'exact')} | {cell('prose', 'token_accuracy')} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
