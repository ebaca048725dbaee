"""Story infilling on ROCStories (the DiffuGPT/DiffuLLaMA protocol): ROUGE-1/2/L.

    .venv/bin/python -m benchmarks.rocstories --limit 100

Of the Story Cloze validation set's first 1,000 stories (``../shared/bench/data``), take
``--limit`` from the start: the prefix is sentences 1-2, the hole sentence 3 (an auto hole,
filled exactly as ``lacuna fill`` fills it with no flags), the suffix sentence 4 and the right
ending. The fill is scored against sentence 3 with ROUGE-1/2/L F1 over lowercased
alphanumeric words (``rouge_score``'s default tokenizer, no stemming).
"""

from __future__ import annotations

import csv
import json
import re
import sys
import time
from pathlib import Path

from benchmarks import arg_parser, humaneval
from benchmarks.quality import cli_request, load_model
from infill.engine import fill
from infill.types import Hole, Length

STORIES = humaneval.DATA / "rocstories_cloze_val_2016.csv"


def stories(limit: int) -> list[dict]:
    with open(STORIES, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[:1000]
    out = []
    for row in rows[:limit]:
        ending = row[f"RandomFifthSentenceQuiz{row['AnswerRightEnding']}"]
        out.append({"prefix": f"{row['InputSentence1']} {row['InputSentence2']} ",
                    "reference": row["InputSentence3"],
                    "suffix": f" {row['InputSentence4']} {ending}\n"})
    return out


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _f1(overlap: int, got: int, want: int) -> float:
    if not overlap:
        return 0.0
    p, r = overlap / got, overlap / want
    return 2 * p * r / (p + r)


def rouge_n(got: list[str], want: list[str], n: int) -> float:
    def grams(ws: list[str]) -> dict[tuple[str, ...], int]:
        out: dict[tuple[str, ...], int] = {}
        for i in range(len(ws) - n + 1):
            out[tuple(ws[i : i + n])] = out.get(tuple(ws[i : i + n]), 0) + 1
        return out

    g, w = grams(got), grams(want)
    overlap = sum(min(c, w.get(k, 0)) for k, c in g.items())
    return _f1(overlap, sum(g.values()), sum(w.values()))


def rouge_l(got: list[str], want: list[str]) -> float:
    lcs = [0] * (len(want) + 1)
    for a in got:
        prev = 0
        for j, b in enumerate(want, 1):
            prev, lcs[j] = lcs[j], prev + 1 if a == b else max(lcs[j], lcs[j - 1])
    return _f1(lcs[-1], len(got), len(want))


def main(argv=None) -> int:
    ap = arg_parser(__doc__)
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--budget", type=int, default=48, help="auto-hole budget in tokens")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    path, den = load_model(args.model)
    load = time.perf_counter() - started
    totals = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    seconds, samples = 0.0, []
    items = stories(args.limit)
    for i, story in enumerate(items):
        text = story["prefix"] + story["suffix"]
        at = len(story["prefix"])
        request = cli_request([], text, [Hole(at, at, Length.auto(args.budget))], "plaintext")
        t0 = time.perf_counter()
        got = fill(request, den).fills[0].text
        seconds += time.perf_counter() - t0
        g, w = words(got), words(story["reference"])
        totals["rouge1"] += rouge_n(g, w, 1)
        totals["rouge2"] += rouge_n(g, w, 2)
        totals["rougeL"] += rouge_l(g, w)
        if i < 5:
            samples.append({"fill": got, "reference": story["reference"]})
        print(f"  story {i + 1}/{len(items)} fill={got[:70]!r}", file=sys.stderr, flush=True)
    n = max(len(items), 1)
    out = {"model": str(path), "n": len(items), "load_seconds": round(load, 2),
           "seconds_per_fill": round(seconds / n, 3),
           **{k: round(100 * v / n, 2) for k, v in totals.items()}, "samples": samples}
    print(json.dumps(out, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print("\n| model | stories | ROUGE-1 | ROUGE-2 | ROUGE-L | s/fill |\n|---|---|---|---|---|---|")
    print(f"| {args.model} | {out['n']} | {out['rouge1']} | {out['rouge2']} | {out['rougeL']} "
          f"| {out['seconds_per_fill']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
