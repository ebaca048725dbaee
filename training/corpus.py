"""The offline corpus: Python, JavaScript and Markdown/reST files already on the machine.

Files come from the Python installs' standard libraries and site-packages and from
/usr/share/doc. They are de-duplicated by content, files that contain text of a
HumanEval problem are dropped (never train on the benchmark), and a deterministic slice
(by a hash of the content) is held out for evaluation.

Infill-shaped examples (``make_example``) mimic what the engine builds at inference: the
text before and after the hole and the hole itself are tokenized separately, the hole gets
a budget of masks at least as long as its text, and the unused budget is filled with the
end token, which the model learns to emit where nothing more belongs.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import os
import random
import re
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks.humaneval import DATA as BENCH_DATA
from benchmarks.humaneval import SETS as BENCH_SETS


def _roots() -> list[str]:
    """The running interpreter's standard library and site-packages (so the same script
    finds a corpus on the GPU machine's Python too), the system Pythons, /usr/share/doc
    and the project's venv; missing ones are skipped."""
    listed = [  # this machine's, in the order every recorded run listed them
        "/root/.pyenv/versions/3.11.7/lib/python3.11",
        *sorted(str(p) for p in Path("/usr/lib").glob("python3*")),
        "/usr/share/doc",
        str(Path(__file__).resolve().parents[1] / ".venv/lib/python3.11/site-packages"),
        *(sysconfig.get_paths()[k] for k in ("stdlib", "purelib", "platlib")),
    ]
    return [r for r in dict.fromkeys(listed) if os.path.isdir(r)]


ROOTS = _roots()
EXTS = {".py": "python", ".js": "javascript", ".md": "markdown", ".rst": "markdown"}
#: The benchmark whose problems the corpus must not contain, where the benchmarks find it
#: (``$LACUNA_BENCH_DATA`` where ``../shared`` is not beside the checkout: the GPU machine).
HUMANEVAL = BENCH_DATA / BENCH_SETS["single-line"]
HOLDOUT_MOD = 40  # one file in 40 is held out
MAX_BYTES = 400_000
SKIP_DIRS = {"__pycache__", "node_modules", ".git"}


def humaneval_needles(path: Path = HUMANEVAL) -> list[str]:
    """Distinctive lines of every HumanEval problem: a file holding one is not trained on.

    Without the benchmark file there is no filter, so that is an error, not an empty list.
    """
    needles: set[str] = set()
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: without it the corpus could hold benchmark problems "
            "(set LACUNA_BENCH_DATA to the folder with HumanEval-SingleLineInfilling.jsonl.gz)"
        )
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            text = row["prompt"] + row["canonical_solution"] + row["suffix"]
            for ln in text.splitlines():
                ln = ln.strip()
                if len(ln) >= 30 and not ln.startswith(("import ", "from ", "return ")):
                    needles.add(ln)
    return sorted(needles)


def is_heldout(digest: str) -> bool:
    return int(digest[:8], 16) % HOLDOUT_MOD == 0


def _corpus(roots, needles: set[str]) -> Iterator[dict]:
    """Every usable file under ``roots`` once (by content), in a stable order, unless it
    holds a benchmark line."""
    seen: set[str] = set()
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
            for name in sorted(filenames):
                lang = EXTS.get(os.path.splitext(name)[1])
                if lang is None:
                    continue
                p = os.path.join(dirpath, name)
                try:
                    if os.path.islink(p) or not 200 <= os.path.getsize(p) <= MAX_BYTES:
                        continue
                    data = open(p, "rb").read()
                    text = data.decode("utf-8")
                except (OSError, UnicodeDecodeError):
                    continue
                digest = hashlib.sha1(data).hexdigest()
                if digest in seen:
                    continue
                seen.add(digest)
                if needles and not needles.isdisjoint(ln.strip() for ln in text.splitlines()):
                    continue
                yield {"path": p, "lang": lang, "digest": digest, "heldout": is_heldout(digest)}


def list_files(roots=ROOTS, cache: Path | None = None, limit: int | None = None,
               humaneval: Path = HUMANEVAL) -> list[dict]:
    """``[{path, lang, digest, heldout}]`` over the corpus, de-duplicated, benchmark-free;
    at most ``limit`` files (walking a GPU image's site-packages whole costs device time)."""
    if cache is not None and cache.exists():
        return json.loads(cache.read_text())
    out = list(itertools.islice(_corpus(roots, set(humaneval_needles(humaneval))), limit))
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(out))
    return out


@dataclass
class Example:
    ids: list[int]  # the clean canvas: prefix token, before, hole (text + end pad), after
    hole: range  # canvas positions of the hole
    lang: str


def _lines(text: str) -> list[int]:
    """Start offsets of every line."""
    starts = [0]
    for m in re.finditer("\n", text):
        starts.append(m.end())
    return starts


def choose_hole(text: str, lang: str, rng: random.Random) -> tuple[int, int] | None:
    """A character span of ``text`` shaped like the holes users and benchmarks make."""
    starts = _lines(text)
    nonblank = [i for i in range(len(starts) - 1) if text[starts[i]:starts[i + 1]].strip()]
    if len(nonblank) < 4:
        return None
    kind = rng.random()
    i = rng.choice(nonblank[1:-1])
    a, b = starts[i], starts[i + 1]
    if lang == "markdown" and kind < 0.5:
        # a sentence inside a paragraph
        para_end = text.find("\n\n", a)
        para_end = len(text) if para_end < 0 else para_end
        chunk = text[a:para_end]
        cuts = [0] + [m.end() for m in re.finditer(r"[.!?] ", chunk)] + [len(chunk)]
        if len(cuts) >= 3:
            j = rng.randrange(len(cuts) - 1)
            return a + cuts[j], a + cuts[j + 1]
        return a, b
    if kind < 0.55:  # one whole line with its indentation and newline (HumanEval single-line)
        return a, b
    if kind < 0.75:  # two to six whole lines (HumanEval multi-line)
        k = rng.randint(2, 6)
        j = min(i + k, len(starts) - 1)
        return a, starts[j]
    if kind < 0.9:  # the rest of a line after its indentation ("    [MASK]")
        line = text[a:b]
        indent = len(line) - len(line.lstrip())
        end = b - 1 if text[b - 1:b] == "\n" else b
        return (a + indent, end) if a + indent < end else None
    # a random span inside a line
    line = text[a:b].rstrip("\n")
    if len(line) < 4:
        return None
    x, y = sorted(rng.sample(range(len(line) + 1), 2))
    return a + x, a + y


def make_example(tok, text: str, lang: str, rng: random.Random, *, end_id: int,
                 prefix_id: int, context: int = 96, max_hole: int = 48,
                 budget: int = 32) -> Example | None:
    """One infill-shaped training canvas from a file's text, or None if none fits."""
    if len(text) > 24_000:  # a window of the file: tokenizing all of a big file is waste
        s = rng.randrange(len(text) - 20_000)
        s = text.find("\n", s) + 1
        text = text[s:s + 20_000]
    span = choose_hole(text, lang, rng)
    if span is None:
        return None
    a, b = span
    hole = tok(text[a:b], add_special_tokens=False)["input_ids"]
    if not hole or len(hole) > max_hole:
        return None
    before = tok(text[max(0, a - context * 6):a], add_special_tokens=False)["input_ids"]
    after = tok(text[b:b + context * 6], add_special_tokens=False)["input_ids"]
    # context split as the planner does: up to ``context`` tokens on each side, random cut
    n_before = rng.randint(context // 4, context)
    n_after = rng.randint(context // 4, context)
    if a > context * 6 and before:
        before = before[1:]  # token made from half a word at the cut
    before = before[-n_before:] if n_before else []
    after = after[:n_after]
    # the budget: the engine's default (32) when the text fits, else a bit more than needed
    if len(hole) <= budget and rng.random() < 0.6:
        width = budget
    else:
        width = len(hole) + rng.randint(0, 16)
    ids = [prefix_id, *before]
    start = len(ids)
    ids += hole + [end_id] * (width - len(hole))
    ids += after
    return Example(ids, range(start, start + width), lang)
