"""CAL, calibrated adaptive length (arXiv 2602.00476): the hole's length chosen before
decoding, from the model's confidence in its first denoising step.

Over ``[prefix; MASK x L; suffix]`` the mean confidence of the masked positions, Phi(L),
peaks near the length the text needs, but it also falls with L for every text alike (the
length bias B(L)). CAL divides by a bias curve fitted on held-out text, hill-climbs L from
a starting length, and then decodes at the length found. Lacuna's canvases keep a hole's
whole budget, so a probe row masks the first L positions of the hole and closes the rest
with the end token, exactly the layout the chosen length is decoded in; the rows of one
search direction go through the network as one batch.

The curves live in ``assets/length-bias.json`` by model family (``training/fit_length_bias.py``
fits one); a model without a fitted curve is searched uncalibrated (B = 1), and the stats
say so.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch

from .sample import Bans
from .types import Denoiser, LengthOptions

CURVES = Path(__file__).parent / "models" / "assets" / "length-bias.json"


@dataclass(frozen=True)
class LengthBias:
    """B(L) = a exp(-b L) + c exp(-d L) + e, the paper's form; ``source`` says where the
    parameters come from."""

    a: float = 0.0
    b: float = 0.0
    c: float = 0.0
    d: float = 0.0
    e: float = 1.0
    source: str = "none (uncalibrated: no curve fitted for this model)"

    def __call__(self, length: int) -> float:
        return (self.a * math.exp(-self.b * length) + self.c * math.exp(-self.d * length)
                + self.e)


@cache
def _curves() -> dict[str, dict]:
    if not CURVES.exists():
        return {}
    return json.loads(CURVES.read_text(encoding="utf-8"))


def bias_for(denoiser: Denoiser) -> LengthBias:
    """The curve fitted for ``denoiser``'s family, or the flat curve."""
    entry = _curves().get(denoiser.family)
    if entry is None:
        return LengthBias()
    return LengthBias(*entry["params"], source=f"{denoiser.family}: {entry['fitted_on']}")


def hill_climb(score: Callable[[list[int]], list[float]], start: int, lowest: int,
               highest: int, patience: int = 4, batch: int = 4) -> tuple[int, int, int]:
    """The length with the best ``score`` found by climbing up from ``start``, then down,
    each way until ``patience`` lengths in a row bring nothing better; ``score`` takes a
    list of lengths (one batch) and returns their scores. Returns the length, how many
    lengths were scored and in how many calls."""
    best_len, best = start, score([start])[0]
    scored = calls = 1
    for direction in (1, -1):
        misses, length = 0, start + direction
        while misses < patience and lowest <= length <= highest:
            lengths = []
            while len(lengths) < batch and lowest <= length <= highest:
                lengths.append(length)
                length += direction
            calls += 1
            for n, value in zip(lengths, score(lengths), strict=True):
                scored += 1
                if value > best:
                    best_len, best, misses = n, value, 0
                else:
                    misses += 1
                    if misses >= patience:
                        break
    return best_len, scored, calls


@torch.inference_mode()
def first_step_confidence(denoiser: Denoiser, ids: list[int], run: Sequence[int],
                          lengths: list[int], bans: Bans) -> list[float]:
    """Phi(L) for each of ``lengths``: the mean first-step confidence of the run's first
    L positions when those are masked and the rest of the run holds the end token (every
    other position of ``ids`` as it is)."""
    device = bans.never.device
    end_id = min(denoiser.end_ids)
    positions = torch.tensor(list(run), dtype=torch.long, device=device)
    x = torch.tensor(ids, dtype=torch.long, device=device).repeat(len(lengths), 1)
    opened = torch.arange(len(run), device=device)[None, :] < torch.tensor(
        lengths, device=device)[:, None]                                   # [K, budget]
    x[:, positions] = torch.where(opened, denoiser.mask_id, end_id)
    logits = denoiser.logits(x, positions=positions).float()               # [K, budget, V]
    for k in range(len(lengths)):
        bans.apply(logits[k], positions, x[k])
    confidence = torch.softmax(logits, dim=-1).amax(dim=-1)
    return ((confidence * opened).sum(-1) / opened.sum(-1)).tolist()


def choose_lengths(denoiser: Denoiser, ids: list[int], runs: list[list[int]],
                   length: LengthOptions, bans: Bans) -> tuple[list[int], int, int, LengthBias]:
    """CAL's length for each auto run (searched one run at a time, the others masked at
    their lengths so far), the probe rows and forward passes spent, and the curve used."""
    bias = bias_for(denoiser)
    end_id = min(denoiser.end_ids)
    chosen = [min(length.initial, len(r)) for r in runs]
    rows = passes = 0
    canvas = list(ids)
    for i, run in enumerate(runs):
        for j, other in enumerate(runs):  # the other holes at their current lengths
            if j != i:
                for n, p in enumerate(other):
                    canvas[p] = denoiser.mask_id if n < chosen[j] else end_id

        def score(lengths: list[int], run=run) -> list[float]:
            phi = first_step_confidence(denoiser, canvas, run, lengths, bans)
            return [v / bias(n) for v, n in zip(phi, lengths, strict=True)]

        chosen[i], spent, calls = hill_climb(score, chosen[i], 1, len(run), length.patience,
                                             length.probe_batch)
        rows, passes = rows + spent, passes + calls
    return chosen, rows, passes, bias
