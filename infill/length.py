"""Length policies for auto-length holes: the model decides how long a fill is.

A masked diffusion model fills exactly as many masks as it is given. Every policy here
works on the hole's full budget of canvas positions; positions a fill does not use hold
the family's end token, which the engine trims. So a canvas never changes length, and
growing or shrinking a hole is just turning end tokens into masks or masks into end tokens.

- ``absorb``: all the budget is masked; the model writes end tokens where it wants less
  (the first it commits closes the masks after it, as under ``grow``: nothing follows an end).
- ``grow``: start with a few masks; while the model doubts that the hole ends where the
  masks end (low end-token probability right after them), open more; when it commits an
  end token inside the hole, close the masks after it (training-free, after DAEDAL).
- ``best_of``: fill a handful of candidate lengths side by side in one batch and keep the
  one the model scores best (mean commit confidence, or the likelihood of the finished
  hole under one more pass).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .sample import Sampled, choose_tokens, never_sampled
from .types import Cancelled, Denoiser, LengthOptions, SamplingOptions


@dataclass
class Growth:
    """The grow policy's state: for each auto run, how many of its positions are open."""

    runs: list[list[int]]
    end_id: int
    mask_id: int
    end_ids: frozenset[int]
    options: LengthOptions
    open: list[int] = field(default_factory=list)
    grown: int = 0
    #: Masks the sampler closed after an end token the model committed.
    dropped: int = 0

    def prepare(self, x: torch.Tensor) -> None:
        """Close every run after its first ``initial`` positions."""
        self.open = []
        for run in self.runs:
            n = min(self.options.initial, len(run))
            for p in run[n:]:
                x[p] = self.end_id
            self.open.append(n)

    def frontier(self) -> list[int]:
        """The first closed position of each run that can still grow."""
        return [run[n] for run, n in zip(self.runs, self.open, strict=True) if n < len(run)]

    def grow(self, x: torch.Tensor, p_end: dict[int, float]) -> int:
        """Open ``step`` more positions in runs whose frontier doubts the end."""
        added = 0
        for i, run in enumerate(self.runs):
            n = self.open[i]
            if n >= len(run) or p_end.get(run[n], 1.0) >= self.options.grow_below:
                continue
            if any(int(x[p]) in self.end_ids for p in run[:n]):
                continue  # the model already ended this hole inside; don't reopen
            m = min(len(run), n + self.options.step)
            for p in run[n:m]:
                x[p] = self.mask_id
            added += m - n
            self.open[i] = m
        self.grown += added
        return added


def candidate_lengths(budget: int, options: LengthOptions) -> list[int]:
    return sorted({min(c, budget) for c in options.candidates})


@torch.inference_mode()
def best_of(
    denoiser: Denoiser,
    ids: list[int],
    runs: list[list[int]],
    options: SamplingOptions,
    length: LengthOptions,
    *,
    fixed: list[int] = (),
    should_cancel=None,
    on_step=None,
    admissible=None,
) -> tuple[Sampled, dict[str, object]]:
    """Fill ``runs`` (auto holes' positions) at each candidate length in one batch.

    Row ``k`` opens the first ``n_k`` positions of every run and closes the rest with the
    end token; ``fixed`` positions (exact holes) are open in every row, end tokens
    forbidden. Each row commits ``ceil(masks left / steps left)`` tokens a step by
    confidence, as the plain sampler does. ``on_step`` (the sampler's progress callback)
    sees, after each step, the row leading on mean confidence so far. ``admissible``
    (as in ``sample``) restricts a row's positions to the tokens it names. Returns the winner
    and a report of the scores.
    """
    device = torch.device(getattr(denoiser, "device", "cpu"))
    end_id = min(denoiser.end_ids)
    budget = min(len(r) for r in runs)
    lengths = candidate_lengths(budget, length)
    x = torch.tensor(ids, dtype=torch.long, device=device).repeat(len(lengths), 1)
    for k, n in enumerate(lengths):
        for run in runs:
            for p in run[n:]:
                x[k, p] = end_id
    positions = sorted([p for run in runs for p in run] + list(fixed))
    pos_t = torch.tensor(positions, dtype=torch.long, device=device)
    fixed_rows = torch.tensor([positions.index(p) for p in fixed], dtype=torch.long)
    generator = torch.Generator(device=device).manual_seed(options.seed)
    confidence: list[dict[int, float]] = [{} for _ in lengths]
    steps_for = [options.steps or n * len(runs) + len(fixed) for n in lengths]
    never = never_sampled(denoiser)
    end_list = sorted(denoiser.end_ids)
    steps = 0
    while True:
        masked = x[:, pos_t] == denoiser.mask_id  # [K, P]
        if not masked.any():
            break
        if should_cancel is not None and should_cancel():
            raise Cancelled("the fill was cancelled")
        before = [len(c) for c in confidence]
        logits = denoiser.logits(x, positions=pos_t).float()
        logits[..., never] = -math.inf
        if len(fixed_rows) and end_list:
            logits[:, fixed_rows[:, None], torch.tensor(end_list)] = -math.inf
        for k in range(len(lengths) if admissible is not None else 0):
            for p, admits in admissible(x[k]).items():
                row = logits[k, positions.index(p), : len(admits)]
                row.masked_fill_(~admits.to(row.device), -math.inf)
        for k in range(len(lengths)):
            rows = masked[k].nonzero().flatten()
            if not len(rows):
                continue
            tokens, conf = choose_tokens(logits[k, rows], options, generator)
            left = max(1, steps_for[k] - steps)
            take = min(len(rows), max(1, math.ceil(len(rows) / left)))
            for r in torch.topk(conf, take).indices.tolist():
                p = positions[int(rows[r])]
                x[k, p] = tokens[r]
                confidence[k][p] = float(conf[r])
        steps += 1
        if on_step is not None:
            lead = max(range(len(lengths)), key=lambda k: _mean_log(confidence[k]))
            left = int((x[lead, pos_t] == denoiser.mask_id).sum())
            on_step(steps, max(steps_for), left, len(confidence[lead]) - before[lead],
                    x[lead])
    passes = steps
    if length.scorer == "likelihood":
        logp = torch.log_softmax(denoiser.logits(x, positions=pos_t).float(), dim=-1)
        scores = logp.gather(-1, x[:, pos_t][..., None]).squeeze(-1).mean(-1).tolist()
        passes += 1
    else:
        scores = [_mean_log(conf) for conf in confidence]
    best = max(range(len(lengths)), key=lambda k: scores[k])
    report = {"candidates": lengths, "scores": [round(s, 4) for s in scores],
              "chosen": lengths[best], "scorer": length.scorer}
    return Sampled(x[best].cpu(), confidence[best], steps, passes), report


def _mean_log(confidence: dict[int, float]) -> float:
    """Mean log confidence of a row's commits (the ``confidence`` scorer)."""
    return sum(math.log(max(c, 1e-9)) for c in confidence.values()) / max(len(confidence), 1)
