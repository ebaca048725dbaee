"""Fill quality of the embedded default: HumanEval-Infilling pass@1 and a held-out prose set.

    .venv/bin/python -m benchmarks.quality --models baseline default --limit 20

Models: ``default`` (the embedded default: SmolLM2-135M's causal view and its diffusion
adapter), ``causal`` (the unadapted SmolLM2-135M run causally, greedy from the prefix alone
with the last prefix token healed, up to the first line break: the reference baseline),
``baseline`` (SmolLM2-135M made bidirectional, no training), ``adapter:FILE`` (the base
plus any adapter file, e.g. a training checkpoint), or a model directory.

* HumanEval single-line and multi-line infilling (``/work/shared/bench/data``): the hole
  is an ``auto`` hole at the document position of the reference, filled exactly as
  ``lacuna fill FILE --range A:A`` fills it with no other flags (``lacuna.cli.fill_request``;
  ``--threshold``, ``--steps``, ``--block-length``, ``--context``, ``--constrain`` add
  that flag); ``--seed`` draws the problems at random (recorded) instead of a stride; the
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

from benchmarks import humaneval
from infill.engine import fill
from infill.types import Hole, InfillRequest, Length, SamplingOptions

DATA = humaneval.DATA
#: This script's short set names, as humaneval.py calls them.
SETS = {"single": "single-line", "multi": "multi-line"}


def load_model(spec: str):
    from infill.models import load_denoiser
    from infill.models.embedded.smollm2 import base_dir, default_dir

    if spec == "baseline":
        path = base_dir()
    elif spec == "default":
        path = default_dir()
    elif spec.startswith("adapter:"):
        path = default_dir(adapter=Path(spec[len("adapter:"):]))
    else:
        path = Path(spec)
    return path, load_denoiser(path, device="cpu")


def cli_request(flags: list[str], text: str, holes: list[Hole], language: str):
    """The request ``lacuna fill FILE`` builds with ``flags`` (besides ``--range``)."""
    from lacuna.cli import build_parser, fill_request

    return fill_request(build_parser().parse_args(["fill", "FILE", *flags]), text, holes,
                        language)


def problems(name: str, limit: int, offset: int, seed: int | None) -> list[dict]:
    if seed is None:
        return humaneval.load(SETS[name], limit, DATA, offset=offset)
    rows = humaneval.load(SETS[name], None, DATA)
    random.Random(seed).shuffle(rows)
    return rows[:limit]


def run_humaneval(den, name: str, limit: int, budget: int, flags: list[str],
                  timeout: float, show: int = 0, constraint=None, offset: int = 0,
                  seed: int | None = None) -> dict:
    rows = problems(name, limit, offset, seed)
    passed = exact = broken = 0
    seconds = 0.0
    samples, fills = [], []
    for i, row in enumerate(rows):
        text = row["prompt"] + row["suffix"]
        started = time.perf_counter()
        if den == "causal":
            got = causal_line(row["prompt"])
        else:
            hole = Hole(len(row["prompt"]), len(row["prompt"]), Length.auto(budget))
            req = cli_request(flags, text, [hole], "python")
            got = fill(req, den, constraint=constraint).fills[0].text
        seconds += time.perf_counter() - started
        ok = humaneval.passes(row, got, timeout)
        passed += ok
        broken += _breaks_syntax(row, got)
        exact += got.strip() == row["canonical_solution"].strip()
        fills.append({"task": row["task_id"], "fill": got, "pass": ok})
        if i < show:
            samples.append({"task": row["task_id"], "fill": got,
                            "reference": row["canonical_solution"], "pass": ok})
        print(f"  {name} {i + 1}/{len(rows)} {row['task_id']} pass={ok} "
              f"fill={got[:60]!r}", file=sys.stderr, flush=True)
    n = max(len(rows), 1)
    return {"n": len(rows), "pass@1": passed / n, "exact": exact / n,
            "new_syntax_errors": broken, "seconds_per_fill": seconds / n, "samples": samples,
            "fills": fills}


def _breaks_syntax(row: dict, fill: str) -> bool:
    """The filled program does not parse (``ast``) where the reference program does."""
    import ast

    def parses(text: str) -> bool:
        try:
            ast.parse(text)
        except (SyntaxError, ValueError):
            return False
        return True

    return (parses(row["prompt"] + row["canonical_solution"] + row["suffix"])
            and not parses(row["prompt"] + fill + row["suffix"]))


_CAUSAL = {}


def causal_line(prompt: str, tokens: int = 48) -> str:
    """The reference baseline: the unadapted base run causally, greedy from the prompt
    alone, its last token healed, up to the first line break (no suffix)."""
    import torch

    from infill.heal import vocabulary_texts
    from infill.models import load_denoiser
    from infill.models.embedded.smollm2 import base_dir

    if "model" not in _CAUSAL:
        den = load_denoiser(base_dir(), device="cpu")
        _CAUSAL.update(model=den.model, tok=den.tokenizer,
                       texts=vocabulary_texts(den.tokenizer))
    model, tok, texts = _CAUSAL["model"], _CAUSAL["tok"], _CAUSAL["texts"]
    ids = tok(prompt, add_special_tokens=False)["input_ids"]
    healed, context = texts[ids[-1]], [0] + ids[:-1]
    out, past, nxt = "", None, torch.tensor([context])
    with torch.inference_mode():
        for step in range(tokens):
            logits, past = model.extend(nxt, past)
            logits = logits[0, -1, : len(texts)]
            if step == 0:
                ok = torch.tensor([i > 16 and t.startswith(healed) for i, t in enumerate(texts)])
                logits = logits.masked_fill(~ok, -float("inf"))
            token = int(logits.argmax())
            if token == 0:
                break
            out += texts[token]
            if "\n" in out[len(healed):]:
                break
            nxt = torch.tensor([[token]])
    return out[len(healed):].split("\n")[0] + "\n"


def prose_items(limit: int, seed: int = 0) -> list[dict]:
    """Sentence holes in held-out Markdown/reST paragraphs (deterministic)."""
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
        # Tokens of the text (a healed fill's first token also spells text before it).
        ref_ids = tok(it["reference"], add_special_tokens=False)["input_ids"]
        got_ids = tok(got, add_special_tokens=False)["input_ids"]
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
    ap.add_argument("--constrain", action=argparse.BooleanOptionalAction, default=None,
                    help="HumanEval fills under the tree-sitter syntax constraint (default: "
                         "the CLI's, on)")
    ap.add_argument("--block-length", type=int, default=None,
                    help="semi-autoregressive blocks of this many masks (default: one block)")
    ap.add_argument("--threshold", type=float, default=None,
                    help="commit every token at least this confident (Fast-dLLM)")
    ap.add_argument("--steps", type=int, default=None, help="steps on a schedule")
    ap.add_argument("--seed", type=int, default=None,
                    help="draw the HumanEval problems at random with this seed (recorded)")
    ap.add_argument("--show", type=int, default=3, help="sample fills kept per set")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    # The CLI's defaults, unless a flag names another.
    flags = []
    for flag, value in (("--block-length", args.block_length), ("--threshold", args.threshold),
                        ("--steps", args.steps), ("--context", args.context)):
        if value is not None:
            flags += [flag, str(value)]
    if args.constrain is not None:  # the request asks for it; the constraint object serves it
        flags.append("--constrain" if args.constrain else "--no-constrain")
    options = cli_request(flags, "x", [], "plaintext").options
    from grammars import constraint_for

    constraint, _ = constraint_for("python", args.constrain is not False)
    results = {}
    for spec in args.models:
        started = time.perf_counter()
        path, den = ("causal (prefix only, healed)", "causal") if spec == "causal" else \
            load_model(spec)
        out = {"model": str(path), "load_seconds": time.perf_counter() - started,
               "flags": flags, "seed": args.seed}
        if "single" in args.sets:
            out["single"] = run_humaneval(den, "single", args.limit, args.budget, flags,
                                          args.timeout, args.show, constraint, args.offset,
                                          args.seed)
        if "multi" in args.sets:
            out["multi"] = run_humaneval(den, "multi", args.limit_multi or args.limit,
                                         args.budget_multi, flags, args.timeout, args.show,
                                         constraint, args.offset, args.seed)
        if "prose" in args.sets and den != "causal":
            out["prose"] = run_prose(den, args.limit, args.budget, options, args.show)
        results[spec] = out
        print(json.dumps({spec: {k: v for k, v in out.items()}}, indent=1), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print("\n| model | single-line pass@1 | single EM | single new syntax errors "
          "| multi-line pass@1 | multi EM | prose EM | prose token acc |")
    print("|---|---|---|---|---|---|---|---|")
    for spec, out in results.items():
        def cell(s, k, out=out):
            return f"{out[s][k]:.1%} ({out[s]['n']})" if s in out else "-"
        errors = out["single"]["new_syntax_errors"] if "single" in out else "-"
        print(f"| {spec} | {cell('single', 'pass@1')} | {cell('single', 'exact')} | {errors} | "
              f"{cell('multi', 'pass@1')} | {cell('multi', 'exact')} | "
              f"{cell('prose', 'exact')} | {cell('prose', 'token_accuracy')} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
