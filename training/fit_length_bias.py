"""Fit CAL's length-bias curve B(L) for a model (``infill.calibrated``) on held-out text.

For held-out Python files of the offline corpus (``training/corpus.py``: never HumanEval),
one hole per file shaped as users make them; for each, the first-step confidence Phi(L)
over the hole's first L positions, for a grid of L. B(L) is Phi's mean over the holes,
whatever their true length: the part of the confidence that only the length explains.
The paper's form a exp(-bL) + c exp(-dL) + e is fitted to it and written into
``infill/models/assets/length-bias.json`` under the model's family.

    .venv/bin/python -m training.fit_length_bias --model default --holes 60
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch

from infill.calibrated import CURVES, first_step_confidence
from infill.models import load_denoiser
from infill.models.default import resolve_model
from infill.plan import plan
from infill.sample import Bans
from infill.types import Hole, Length
from training.corpus import choose_hole, list_files

GRID = (1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 32)


def fit(lengths: list[int], phi: list[float], steps: int = 3000) -> list[float]:
    """a, b, c, d, e of a exp(-bL) + c exp(-dL) + e by least squares (b, d kept positive
    through their logarithms)."""
    x, y = torch.tensor(lengths, dtype=torch.float64), torch.tensor(phi, dtype=torch.float64)
    p = torch.tensor([0.5, 0.0, 0.3, -3.0, float(y.min())], dtype=torch.float64,
                     requires_grad=True)
    opt = torch.optim.Adam([p], lr=0.02)
    for _ in range(steps):
        a, log_b, c, log_d, e = p
        pred = a * torch.exp(-log_b.exp() * x) + c * torch.exp(-log_d.exp() * x) + e
        loss = ((pred - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    a, log_b, c, log_d, e = p.detach().tolist()
    return [a, float(torch.tensor(log_b).exp()), c, float(torch.tensor(log_d).exp()), e]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--holes", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--context", type=int, default=128, help="context tokens per hole")
    ap.add_argument("--write", action="store_true", help="store the curve in the assets")
    args = ap.parse_args()
    torch.set_num_threads(2)
    path, _ = resolve_model(args.model)
    denoiser = load_denoiser(path, device="cpu")
    rng = random.Random(args.seed)
    files = [f for f in list_files() if f["heldout"] and f["lang"] == "python"]
    rng.shuffle(files)
    sums = torch.zeros(len(GRID), dtype=torch.float64)
    used, started = 0, time.perf_counter()
    for f in files:
        if used >= args.holes:
            break
        text = Path(f["path"]).read_text(encoding="utf-8")
        span = choose_hole(text, "python", rng)
        if span is None or not text[span[0]:span[1]].strip():
            continue
        canvas = plan(text, [Hole(*span, Length.auto(max(GRID)))], denoiser, args.context)[0]
        (run,) = [list(r.positions) for r in canvas.runs]
        bans = Bans.of(denoiser, len(canvas.ids))
        phi = []
        for i in range(0, len(GRID), 6):
            phi += first_step_confidence(denoiser, canvas.ids, run, list(GRID[i:i + 6]), bans)
        sums += torch.tensor(phi, dtype=torch.float64)
        used += 1
        print(f"{used}/{args.holes} {time.perf_counter() - started:.0f}s", flush=True)
    mean = (sums / max(used, 1)).tolist()
    params = fit(list(GRID), mean)
    print("| L | mean Phi(L) | fitted B(L) |\n|---|---|---|")
    a, b, c, d, e = params
    for n, v in zip(GRID, mean, strict=True):
        fitted = a * torch.exp(torch.tensor(-b * n)) + c * torch.exp(torch.tensor(-d * n)) + e
        print(f"| {n} | {v:.4f} | {float(fitted):.4f} |")
    entry = {"params": [round(v, 6) for v in params],
             "fitted_on": f"{used} held-out Python holes of the offline corpus (seed "
                          f"{args.seed}, {args.context} context tokens), "
                          f"training/fit_length_bias.py",
             "model": str(path.name), "grid": list(GRID), "mean_phi": [round(v, 5) for v in mean]}
    print(json.dumps(entry))
    if args.write:
        curves = json.loads(CURVES.read_text(encoding="utf-8")) if CURVES.exists() else {}
        curves[denoiser.family] = entry
        CURVES.write_text(json.dumps(curves, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {CURVES} [{denoiser.family}]")


if __name__ == "__main__":
    main()
