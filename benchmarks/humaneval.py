"""HumanEval-Infilling for the benchmarks: problems read in place, fills run sandboxed.

A problem passes when ``prompt + fill + suffix + test + check(entry_point)`` exits 0 in a
fresh subprocess within a timeout (never in the benchmark's own process).
"""

from __future__ import annotations

import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

DATA = Path(os.environ.get("LACUNA_BENCH_DATA", Path(__file__).resolve().parents[2]
                           / "shared" / "bench" / "data"))
SETS = {
    "single-line": "HumanEval-SingleLineInfilling.jsonl.gz",
    "multi-line": "HumanEval-MultiLineInfilling.jsonl.gz",
    "random-span": "HumanEval-RandomSpanInfilling.jsonl.gz",
}


def load(name: str, limit: int | None = None, data: Path = DATA,
         stride: int | None = None, offset: int = 0) -> list[dict]:
    """Problems of one set: every ``stride``-th, or spread evenly over the set when only
    ``limit`` is given, starting at ``offset`` (a second, disjoint sample of the same
    size: an offset below the stride)."""
    path = Path(data) / SETS[name]
    if not path.exists():
        raise SystemExit(f"benchmark data not found: {path} (set LACUNA_BENCH_DATA)")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    if stride is None and limit and limit < len(rows):
        stride = len(rows) // limit
    return rows[offset :: stride or 1][:limit]


def document(problem: dict, marker: str = "") -> tuple[str, int]:
    """The problem as a document with the hole at the returned offset."""
    return problem["prompt"] + marker + problem["suffix"], len(problem["prompt"])


def program(problem: dict, fill: str) -> str:
    return (problem["prompt"] + fill + problem["suffix"] + "\n" + problem["test"]
            + f"\ncheck({problem['entry_point']})\n")


def passes(problem: dict, fill: str, timeout: float = 10.0) -> bool:
    return run_program(program(problem, fill), timeout)


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
    os.setsid()


def run_program(source: str, timeout: float = 10.0) -> bool:
    """Whether ``source`` exits 0 in a fresh isolated interpreter (``-I``, its own temp
    dir, 2 GiB of address space, no inherited environment) within ``timeout``."""
    with tempfile.TemporaryDirectory(prefix="lacuna-eval-") as tmp:
        script = Path(tmp) / "candidate.py"
        script.write_text(source, encoding="utf-8")
        try:
            done = subprocess.run(
                [sys.executable, "-I", str(script)], cwd=tmp, timeout=timeout,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env={"PATH": "/usr/bin:/bin"}, preexec_fn=_limits,
            )
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0


def canonical_tokens(problem: dict, tokenizer) -> int:
    """The tokens the canonical solution adds to its prompt, counted in context: a fill
    whose first token joins the prompt's last one (a healed line break and indentation)
    is that many tokens long, not as many as the solution tokenized alone."""
    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    prompt = problem["prompt"]
    return count(prompt + problem["canonical_solution"]) - count(prompt)


def exact_match(problem: dict, fill: str) -> bool:
    return fill.strip() == problem["canonical_solution"].strip()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[k]


def open_model(spec: str | None, device: str = "auto"):
    """Load the model a benchmark was asked for (``--model``, else Lacuna's default) and
    print which one it is and on what machine, as every table's header."""
    from infill.models import load_denoiser
    from infill.models.default import resolve_model

    path, note = resolve_model(spec)
    den = load_denoiser(path, device=device)
    print(f"model: {path} ({den.family}){' - ' + note if note else ''}")
    print(f"machine: {machine()}")
    return den


def machine() -> str:
    import platform

    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{platform.machine()} {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads, {gpu}")
