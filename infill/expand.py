"""The ``expand`` length policy: DreamOn's canvas that grows and shrinks while it is sampled.

DreamOn (``Dream-org/DreamOn-v0-7B``) was trained with two more states for a masked
position: ``<|expand|>`` (this position stands for two tokens or more) and delete (the
end-of-text token: this position stands for none). So an auto hole starts with a few masks
and the model itself makes room or takes it away:

- a position committed as expand becomes two masks, and everything after it moves one
  position right; a hole may not grow past its token budget nor be expanded more times
  than its budget, and the canvas may not grow past the model's window: once either is
  used up the expand logit is forbidden there;
- a position committed as delete (an end token) leaves the canvas, and so do the masks
  after it in its hole (the released sampler pads the masks after the first end token with
  end tokens and then deletes them all: nothing follows the end of a fill).

Exact holes and the context never change: only hole positions are ever written, and a
layout change moves context tokens without touching them. The runs' positions are kept
with the canvas (``owner``: which hole, if any, each position belongs to), so the syntax
constraint, progress reports and the engine's fills read the layout as it stands; a key/value
cache is dropped whenever the layout moves.

The released reference is ``eval/generator.py`` (``batch_generate_with_expand_as_token``) in
``DreamLM/DreamOn``; this is Lacuna's own sampler on the same rules, with Lacuna's schedule
(one token a step by default, as the reference; ``steps`` or a confidence ``threshold`` as
for the other policies), bans, reviews and cancellation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from .plan import Canvas
from .sample import (
    Sampled,
    SamplerStep,
    StepCallback,
    choose_tokens,
    commit,
    forbid,
    how_many,
    never_sampled,
    remask_order,
)
from .types import (
    CachedDenoiser,
    Cancelled,
    Denoiser,
    InfillError,
    LengthOptions,
    Remask,
    SamplingOptions,
)

#: ``review(x, runs=...)``: the engine's reviewer told where the holes lie now.
ResizingReview = Callable[..., list[Remask]]


def expand_id_of(denoiser: Denoiser) -> int | None:
    """The token a denoiser was trained to commit for "more room here" (DreamOn's
    ``<|expand|>``), or ``None`` for every model without one: the one place that asks."""
    value = getattr(denoiser, "expand_id", None)
    return None if value is None else int(value)


@dataclass
class Resized(Sampled):
    """What the expand policy sampled, with where each hole ended up on the final canvas."""

    runs: list[range] = field(default_factory=list)

    def relaid(self, canvas: Canvas) -> Canvas:
        """``canvas`` as it stands after sampling: the final ids, each run at its new place."""
        runs = [replace(r, positions=span) for r, span in zip(canvas.runs, self.runs,
                                                                 strict=True)]
        return Canvas(self.ids.tolist(), runs, canvas.window)


class _Canvas:
    """The growing canvas: tokens, which run owns each position (-1: context), commit
    confidence, and the positions' bans; one method per kind of change."""

    def __init__(self, denoiser: Denoiser, canvas: Canvas, length: LengthOptions,
                 expand_id: int) -> None:
        device = torch.device(denoiser.device)
        ids = torch.tensor(canvas.ids, dtype=torch.long, device=device)
        owner = torch.full_like(ids, -1)
        keep = torch.ones_like(ids, dtype=torch.bool)
        self.budget = [r.hole.length.tokens for r in canvas.runs]
        self.auto = torch.tensor([not r.exact for r in canvas.runs], dtype=torch.bool,
                                 device=device)
        self.initial: list[int] = []
        for i, run in enumerate(canvas.runs):
            span = torch.arange(run.positions.start, run.positions.stop, device=device)
            owner[span] = i
            n = len(span) if run.exact else min(length.initial, len(span))
            keep[span[n:]] = False  # an auto hole starts with its first few masks
            self.initial.append(n)
        self.x, self.owner = ids[keep], owner[keep]
        self.x[self.owner >= 0] = denoiser.mask_id
        self.conf = torch.zeros(len(self.x), dtype=torch.float, device=device)
        self.expansions = [0] * len(canvas.runs)
        self.forbidden: dict[int, set[int]] = {}
        self.mask_id, self.expand_id = denoiser.mask_id, expand_id
        self.window = denoiser.max_length
        self.end_ids = torch.tensor(sorted(denoiser.end_ids), dtype=torch.long, device=device)
        never = set(never_sampled(denoiser)) - {expand_id}
        self.never = torch.tensor(sorted(never), dtype=torch.long, device=device)
        self.expanded = self.deleted = 0

    def spans(self) -> list[range]:
        """Each run's positions now (runs are contiguous; a deleted-away hole is empty)."""
        counts = torch.bincount(self.owner[self.owner >= 0], minlength=len(self.budget))
        out = []
        for i, n in enumerate(counts.tolist()):
            start = int((self.owner == i).to(torch.uint8).argmax()) if n else 0
            out.append(range(start, start + n))
        return out

    def open(self) -> torch.Tensor:
        return ((self.owner >= 0) & (self.x == self.mask_id)).nonzero().flatten()

    def expandable(self, spans: list[range]) -> torch.Tensor:
        """By run: whether one more expansion fits its budget and the window."""
        room = len(self.x) < self.window
        return torch.tensor(
            [bool(self.auto[i]) and room and len(s) < b and self.expansions[i] < b
             for i, (s, b) in enumerate(zip(spans, self.budget, strict=True))],
            dtype=torch.bool, device=self.x.device)

    def ban(self, logits: torch.Tensor, rows: torch.Tensor, spans: list[range]) -> None:
        """Set to -inf what each open position may not become: never-sampled tokens, end
        tokens and expand in exact holes, expand where its room is used up, and what a
        review remasked there."""
        logits[:, self.never] = -math.inf
        run = self.owner[rows]
        exact = (~self.auto[run]).nonzero().flatten()
        if len(self.end_ids) and len(exact):
            logits[exact[:, None], self.end_ids] = -math.inf
        logits[~self.expandable(spans)[run], self.expand_id] = -math.inf
        forbid(logits, rows, self.forbidden)

    def relayout(self, committed: torch.Tensor, spans: list[range]) -> bool:
        """Turn this step's expand commits into two masks each and remove its deletes;
        returns whether the layout moved."""
        x, mask_id = self.x, self.mask_id
        grow = committed & (x == self.expand_id)
        # More expansions in one step than a run (or the window) has room for stay masks.
        for i, span in enumerate(spans):
            room = max(0, min(self.budget[i] - len(span), self.budget[i] - self.expansions[i]))
            hits = grow[span.start:span.stop].nonzero().flatten() + span.start
            drop = hits[room:]
            x[drop], grow[drop] = mask_id, False
        hits = grow.nonzero().flatten()
        drop = hits[max(0, self.window - len(x)):]
        x[drop], grow[drop] = mask_id, False
        delete = committed & torch.isin(x, self.end_ids) & self.auto[self.owner.clamp(min=0)]
        delete &= self.owner >= 0
        for span in spans:  # nothing follows an end: the masks after it go with it
            hit = delete[span.start:span.stop]
            if hit.any():
                first = span.start + int(hit.to(torch.uint8).argmax())
                tail = torch.arange(first, span.stop, device=x.device)
                delete[tail[x[tail] == mask_id]] = True
        if not (grow.any() or delete.any()):
            return False
        for i in self.owner[grow].tolist():
            self.expansions[i] += 1
        self.expanded += int(grow.sum())
        self.deleted += int(delete.sum())
        repeats = 1 + grow.long() - delete.long()
        moved_to = torch.cumsum(repeats, 0) - repeats
        self.forbidden = {int(moved_to[p]): ts for p, ts in self.forbidden.items()
                          if int(repeats[p]) == 1}
        fresh = torch.repeat_interleave(grow, repeats)
        self.x = torch.repeat_interleave(x, repeats)
        self.owner = torch.repeat_interleave(self.owner, repeats)
        self.conf = torch.repeat_interleave(self.conf, repeats)
        self.x[fresh], self.conf[fresh] = mask_id, 0.0
        return True

    def remask(self, remasks: list[Remask]) -> int:
        """A review's positions back to the mask, their token forbidden there from now on."""
        count = 0
        for r in remasks:
            token = int(self.x[r.position])
            if token == self.mask_id or int(self.owner[r.position]) < 0:
                continue
            self.x[r.position] = self.mask_id
            self.forbidden.setdefault(r.position, set()).add(
                token if r.forbid is None else r.forbid)
            count += 1
        return count


@torch.inference_mode()
def expand(
    denoiser: Denoiser,
    canvas: Canvas,
    options: SamplingOptions,
    length: LengthOptions,
    *,
    review: ResizingReview | None = None,
    on_step: StepCallback | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> tuple[Resized, dict[str, object]]:
    """Sample ``canvas`` letting its auto holes grow (expand) and shrink (delete).

    Each auto hole starts with ``length.initial`` masks (at most its budget); the whole
    canvas is one block (``block_length`` does not apply: a block's positions would move).
    ``review`` is the engine's reviewer, told the current runs through a ``runs`` keyword
    (``on_step``'s ``SamplerStep`` carries them too). Returns the sample with its final
    layout, and a report.
    """
    expand_id = expand_id_of(denoiser)
    if expand_id is None:
        raise InfillError("the expand length policy needs a model trained with <|expand|> "
                          "(DreamOn); use absorb, grow, best_of or cal")
    state = _Canvas(denoiser, canvas, length, expand_id)
    device = state.x.device
    generator = torch.Generator(device=device).manual_seed(options.seed)
    use_cache = options.cache and isinstance(denoiser, CachedDenoiser)
    cache, since_refresh = None, 0
    remask_budget = options.max_remask_rounds * max(sum(state.budget), 1)
    steps = passes = remasked = 0
    satisfied: bool | None = None
    while True:
        spans = state.spans()
        rows = state.open()
        if not len(rows):
            if review is None:
                break
            remasks, reopened = _reviewed(review, state, spans, remask_budget - remasked)
            satisfied, remasked, cache = not remasks, remasked + reopened, None
            if not reopened:
                break
            continue
        if should_cancel is not None and should_cancel():
            raise Cancelled("the fill was cancelled")
        passes += 1
        if not use_cache:
            logits = denoiser.logits(state.x[None], positions=rows)[0].float()
        else:
            logits, cache, since_refresh = _cached(denoiser, state, rows, options, cache,
                                                   since_refresh)
        state.ban(logits, rows, spans)
        tokens, conf = choose_tokens(logits, options, generator)
        # one token a step without a schedule, as DreamOn's sampler
        k = how_many(len(rows), None if options.steps is None else options.steps - steps,
                     conf, options.threshold)
        score = remask_order(options, len(rows), generator, device)
        where, chosen = commit(state.x, rows, tokens, conf, k, score)
        state.conf[where] = chosen
        committed = torch.zeros_like(state.x, dtype=torch.bool)
        committed[where] = True
        steps += 1
        if state.relayout(committed, spans):
            cache = None
            spans = state.spans()
        if review is not None and len(rows) > k:
            _, reopened = _reviewed(review, state, spans, remask_budget - remasked)
            remasked += reopened
            cache = None if reopened else cache
        if on_step is not None:
            left = len(state.open())
            total = steps + left if options.steps is None else max(options.steps,
                                                                   steps + (left > 0))
            on_step(SamplerStep(steps, total, left, k, state.x, runs=spans))
    return _finished(state, steps, passes, remasked, satisfied), {
        "policy": "expand", "initial": state.initial, "expanded": state.expanded,
        "deleted": state.deleted, "expandId": expand_id}


def _reviewed(review: ResizingReview, state: _Canvas, spans: list[range], budget: int
              ) -> tuple[list, int]:
    """The review's remasks, and how many tokens they reopened: none when they would
    spend more than the ``budget`` of remasks left."""
    remasks = review(state.x, runs=spans)
    if not remasks or len(remasks) > budget:
        return remasks, 0
    return remasks, state.remask(remasks)


def _finished(state: _Canvas, steps: int, passes: int, remasked: int,
              satisfied: bool | None) -> Resized:
    """The sample in its final layout, with the confidence of every token in a hole."""
    held = (state.owner >= 0) & (state.x != state.mask_id)
    confidence = dict(zip(held.nonzero().flatten().tolist(), state.conf[held].tolist(),
                          strict=True))
    return Resized(state.x.cpu(), confidence, steps, passes, remasked, satisfied,
                   state.forbidden, runs=state.spans())


def _cached(denoiser: CachedDenoiser, state: _Canvas, rows: torch.Tensor,
            options: SamplingOptions, cache: Any, since_refresh: int
            ) -> tuple[torch.Tensor, Any, int]:
    """One pass on the dual cache: a full pass when there is none (the layout moved) or
    it is due for a refresh, else only the hole rows recomputed."""
    x = state.x[None]
    if cache is None or (options.refresh_every and since_refresh >= options.refresh_every):
        logits, cache = denoiser.prefill(x, rows)
        return logits[0].float(), cache, 0
    holes = (state.owner >= 0).nonzero().flatten()
    return denoiser.cached_logits(x, rows, cache, holes)[0].float(), cache, since_refresh + 1
