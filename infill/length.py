"""Length policies for auto-length holes: the model decides how long a fill is.

A masked diffusion model fills exactly as many masks as it is given. Every policy here but
``expand`` works on the hole's full budget of canvas positions; positions a fill does not use hold
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
- ``drafts``: a causal view proposes whole fills and the text after the hole picks one
  (``infill.drafts``; the embedded default's own).
- ``cal``: the length chosen before decoding from the first step's confidence, calibrated
  for its bias with length (``infill.calibrated``), then decoded at that length.

``denoise`` is the one switch between them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .calibrated import choose_lengths
from .drafts import drafter_of, fill_canvas
from .expand import expand
from .plan import Canvas
from .sample import (
    Admissible,
    Bans,
    Review,
    Sampled,
    SamplerStep,
    StepCallback,
    choose_tokens,
    commit,
    how_many,
    sample,
)
from .types import Cancelled, Denoiser, InfillError, InfillRequest, LengthOptions, SamplingOptions


@dataclass
class Ends:
    """Each auto hole is its text, then padding: once the model commits an end token in a
    hole, the masks after it are closed (left to right, a block after the end would
    otherwise be filled and glued on when the ends are trimmed)."""

    runs: list[torch.Tensor]
    end_ids: torch.Tensor
    mask_id: int
    end_id: int

    @classmethod
    def of(cls, runs: list[list[int]], denoiser: Denoiser, device="cpu") -> Ends | None:
        if not runs or not denoiser.end_ids:
            return None
        return cls([torch.tensor(r, dtype=torch.long, device=device) for r in runs],
                   torch.tensor(sorted(denoiser.end_ids), dtype=torch.long, device=device),
                   denoiser.mask_id, min(denoiser.end_ids))

    def close(self, x: torch.Tensor) -> int:
        """Close the masks after the first end token of each run; returns how many."""
        closed = 0
        for run in self.runs:
            is_end = torch.isin(x[run], self.end_ids)
            if not is_end.any():
                continue
            after = run[int(is_end.to(torch.uint8).argmax()) + 1:]
            still = after[x[after] == self.mask_id]
            x[still] = self.end_id
            closed += len(still)
        return closed


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

    def __post_init__(self) -> None:
        self._ends = torch.tensor(sorted(self.end_ids), dtype=torch.long)

    def prepare(self, x: torch.Tensor) -> None:
        """Close every run after its first ``initial`` positions."""
        self.open = []
        for run in self.runs:
            n = min(self.options.initial, len(run))
            x[run[n:]] = self.end_id
            self.open.append(n)

    def frontier(self) -> list[int]:
        """The first closed position of each run that can still grow."""
        return [run[n] for run, n in zip(self.runs, self.open, strict=True) if n < len(run)]

    def grow(self, x: torch.Tensor, p_end: dict[int, float]) -> int:
        """Open ``step`` more positions in runs whose frontier doubts the end."""
        added = 0
        ends = self._ends.to(x.device)
        for i, run in enumerate(self.runs):
            n = self.open[i]
            if n >= len(run) or p_end.get(run[n], 1.0) >= self.options.grow_below:
                continue
            if torch.isin(x[run[:n]], ends).any():
                continue  # the model already ended this hole inside; don't reopen
            m = min(len(run), n + self.options.step)
            x[run[n:m]] = self.mask_id
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
    device = torch.device(denoiser.device)
    end_id = min(denoiser.end_ids)
    budget = min(len(r) for r in runs)
    lengths = candidate_lengths(budget, length)
    x = torch.tensor(ids, dtype=torch.long, device=device).repeat(len(lengths), 1)
    for k, n in enumerate(lengths):
        for run in runs:
            x[k, run[n:]] = end_id
    positions = torch.tensor(sorted([p for run in runs for p in run] + list(fixed)),
                             dtype=torch.long, device=device)
    bans = Bans.of(denoiser, x.shape[1], fixed, device, admissible)
    generator = torch.Generator(device=device).manual_seed(options.seed)
    confidence: list[dict[int, float]] = [{} for _ in lengths]
    steps_for = [options.steps or n * len(runs) + len(fixed) for n in lengths]
    steps = 0
    while True:
        masked = x[:, positions] == denoiser.mask_id  # [K, P]
        if not masked.any():
            break
        if should_cancel is not None and should_cancel():
            raise Cancelled("the fill was cancelled")
        before = [len(c) for c in confidence]
        logits = denoiser.logits(x, positions=positions).float()
        for k in range(len(lengths)):
            open_k = positions[masked[k]]
            if not len(open_k):
                continue
            row_logits = logits[k, masked[k]]
            bans.apply(row_logits, open_k, x[k])
            tokens, conf = choose_tokens(row_logits, options, generator)
            take = how_many(len(open_k), steps_for[k] - steps, conf)
            where, chosen = commit(x[k], open_k, tokens, conf, take)
            confidence[k].update(zip(where.tolist(), chosen.tolist(), strict=True))
        steps += 1
        if on_step is not None:
            lead = max(range(len(lengths)), key=lambda k: _mean_log(confidence[k]))
            left = int((x[lead, positions] == denoiser.mask_id).sum())
            on_step(SamplerStep(steps, max(steps_for), left,
                                len(confidence[lead]) - before[lead], x[lead]))
    passes = steps
    if length.scorer == "likelihood":
        logp = torch.log_softmax(denoiser.logits(x, positions=positions).float(), dim=-1)
        scores = logp.gather(-1, x[:, positions][..., None]).squeeze(-1).mean(-1).tolist()
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


def resolved_policy(length: LengthOptions, denoiser: Denoiser) -> str:
    """The length policy a request's options mean for ``denoiser`` (``auto``: the model's
    own, else the options' fallback)."""
    if length.policy != "auto":
        return length.policy
    own = getattr(denoiser, "length_policy", None)
    return own or (length.fallback if length.fallback != "auto" else "absorb")


def denoise(
    canvas: Canvas,
    request: InfillRequest,
    denoiser: Denoiser,
    review: Review | None,
    on_step: StepCallback | None,
    should_cancel: Callable[[], bool] | None,
    admissible: Admissible | None,
) -> tuple[Sampled, dict[str, object]]:
    """Sample one canvas under the request's length policy; returns what the policy did."""
    auto_runs = [list(r.positions) for r in canvas.runs if not r.exact]
    exact = [p for r in canvas.runs if r.exact for p in r.positions]
    policy = resolved_policy(request.length, denoiser)
    if not auto_runs and policy not in ("drafts", "expand"):
        policy = "absorb"  # exact holes: only drafts and expand (its own bans) read it
    if policy == "drafts":
        drafter = drafter_of(denoiser)
        if drafter is None:
            raise InfillError("the drafts length policy needs a model with a causal view "
                              "(the embedded default); use absorb, grow or best_of")
        accept = None if review is None else review.accepts
        unused = None if review is None else review.unused
        done, report = fill_canvas(drafter, canvas, request.text, list(denoiser.prefix_ids),
                                   min(denoiser.end_ids), accept=accept, unused=unused,
                                   on_step=on_step,
                                   should_cancel=should_cancel)
        return done, {"policy": "drafts", **report}
    if policy == "expand":
        if admissible is not None:
            raise InfillError("the expand length policy does not heal tokens; "
                              "use absorb or grow with this model")
        return expand(denoiser, canvas, request.options, request.length, review=review,
                      on_step=on_step, should_cancel=should_cancel)
    if policy == "best_of" and review is not None:
        policy = "grow"  # best_of scores unconstrained rows; grow works with reviews
    if policy == "best_of":
        done, report = best_of(denoiser, canvas.ids, auto_runs, request.options,
                               request.length, fixed=exact, should_cancel=should_cancel,
                               on_step=on_step, admissible=admissible)
        return done, {"policy": policy, **report}
    if policy == "cal":
        return _calibrated(canvas, request, denoiser, review, on_step, should_cancel,
                           admissible, auto_runs, exact)
    growth = None
    if policy == "grow":
        growth = Growth(auto_runs, min(denoiser.end_ids), denoiser.mask_id,
                        denoiser.end_ids, request.length)
    done = sample(
        denoiser, canvas.ids, [p for r in canvas.runs for p in r.positions], request.options,
        exact_positions=frozenset(exact), review=review, on_step=on_step,
        should_cancel=should_cancel, growth=growth,
        ends=Ends.of(auto_runs, denoiser, denoiser.device),
        admissible=admissible,
    )
    if growth is None:
        return done, {"policy": policy}
    return done, {"policy": policy, "initial": request.length.initial,
                  "grown": growth.grown, "dropped": growth.dropped}


def _calibrated(canvas: Canvas, request: InfillRequest, denoiser: Denoiser,
                review: Review | None, on_step: StepCallback | None,
                should_cancel: Callable[[], bool] | None, admissible: Admissible | None,
                auto_runs: list[list[int]], exact: list[int]) -> tuple[Sampled, dict]:
    """CAL: each auto hole's length searched first, then the canvas decoded with the
    positions past it closed."""
    device = denoiser.device
    bans = Bans.of(denoiser, len(canvas.ids), exact, device, admissible)
    lengths, rows, probes, bias = choose_lengths(denoiser, canvas.ids, auto_runs,
                                                 request.length, bans)
    ids = list(canvas.ids)
    end_id = min(denoiser.end_ids)
    kept = [p for run, n in zip(auto_runs, lengths, strict=True) for p in run[:n]]
    for run, n in zip(auto_runs, lengths, strict=True):
        for p in run[n:]:
            ids[p] = end_id
    done = sample(denoiser, ids, kept + exact, request.options,
                  exact_positions=frozenset(exact), review=review, on_step=on_step,
                  should_cancel=should_cancel,
                  ends=Ends.of([run[:n] for run, n in zip(auto_runs, lengths, strict=True)],
                               denoiser, device),
                  admissible=admissible)
    done.forward_passes += probes  # the search's batched passes
    return done, {"policy": "cal", "chosen": lengths, "probeRows": rows, "probePasses": probes,
                  "bias": bias.source}
