"""What a user waits for: ``lacuna fill FILE --range A:A`` with no other flags, timed.

    .venv/bin/python -m benchmarks.cli_speed --limit 10 --seed 3

Each of ``--limit`` HumanEval single-line problems (drawn with ``--seed``) is written to a
temporary ``.py`` file with its line removed, and the real CLI fills an empty range there
in a fresh process, as an editor's shell command would. Reported apart, as medians and
p90: the fill itself and the model load (both from ``--stats``), and the rest of the
process (interpreter start, imports, reading and writing).
"""

from __future__ import annotations

import argparse
import ast
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import humaneval

LACUNA = Path(sys.executable).with_name("lacuna")


def run_once(problem: dict, workdir: Path) -> dict[str, float]:
    path = workdir / "problem.py"
    text, at = humaneval.document(problem)
    path.write_text(text, encoding="utf-8")
    started = time.perf_counter()
    done = subprocess.run([str(LACUNA), "fill", str(path), "--range", f"{at}:{at}", "--stats"],
                          capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    line = next(x for x in done.stderr.splitlines() if x.startswith("lacuna: {"))
    stats = ast.literal_eval(line[len("lacuna: "):])
    return {"wall": wall, "fill": stats["seconds"], "load": stats["loadSeconds"],
            "process": wall - stats["seconds"] - stats["loadSeconds"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args(argv)
    rows = humaneval.load("single-line")
    random.Random(args.seed).shuffle(rows)
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, problem in enumerate(rows[: args.limit]):
            times.append(run_once(problem, Path(tmp)))
            print(f"  {i + 1}/{args.limit} " + " ".join(f"{k}={v:.2f}" for k, v in
                                                       times[-1].items()), file=sys.stderr)
    print(f"\n{len(times)} fills, seed {args.seed}\n\n| part | median s | p90 s |\n|---|---|---|")
    for key in ("fill", "load", "process", "wall"):
        values = sorted(t[key] for t in times)
        p90 = values[min(len(values) - 1, int(0.9 * len(values)))]
        print(f"| {key} | {statistics.median(values):.2f} | {p90:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
