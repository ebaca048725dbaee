"""The reverse process: from a canvas full of masks to committed tokens.

Each step is one forward pass. Every masked position gets a candidate token and a
confidence; the most confident are committed (LLaDA's low-confidence remasking on a step
schedule, or Fast-dLLM's confidence threshold), the rest stay masked. A reviewer (the
syntax constraint) may send committed tokens back to the mask, with that token forbidden
at that position from then on.

The per-step bookkeeping is tensor work on the canvas (``x[positions] == mask_id``), so the
loop costs nothing next to the forward pass; ``Bans`` and ``commit`` are shared with the
``best_of`` length policy, which runs the same steps on a batch of canvases.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from .types import CachedDenoiser, Cancelled, Denoiser, Remask, SamplingOptions

if TYPE_CHECKING:
    from .length import Ends, Growth

Review = Callable[[torch.Tensor], list[Remask]]
Admissible = Callable[[torch.Tensor], dict[int, torch.Tensor]]


@dataclass(frozen=True)
class SamplerStep:
    """What every sampler (``sample``, ``best_of``, ``expand``, the drafts) reports after a
    step; the engine turns it into the user's ``StepInfo``."""

    step: int
    #: Steps expected in total (may grow when a review reopens tokens).
    total: int
    masks_left: int
    committed: int
    #: The canvas as it stands (the leading draft's, for the samplers that keep several).
    canvas: torch.Tensor
    #: Where the holes lie now, when the sampler moves them (``expand``); else the plan's.
    runs: Sequence[range] | None = None


StepCallback = Callable[[SamplerStep], None]


@dataclass
class Sampled:
    ids: torch.Tensor
    #: Confidence at commit time, by canvas position.
    confidence: dict[int, float]
    steps: int
    forward_passes: int
    remasked: int = 0
    #: ``None`` without a reviewer; else whether the last review found nothing to remask.
    satisfied: bool | None = None
    forbidden: dict[int, set[int]] = field(default_factory=dict)


def _filter_logits(logits: torch.Tensor, top_k: int | None, top_p: float | None) -> torch.Tensor:
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, -math.inf)
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cum = torch.softmax(sorted_logits, dim=-1).cumsum(-1)
        drop = cum - torch.softmax(sorted_logits, dim=-1) >= top_p  # keep the first over p
        sorted_logits = sorted_logits.masked_fill(drop, -math.inf)
        logits = torch.full_like(logits, -math.inf).scatter(-1, order, sorted_logits)
    return logits


def choose_tokens(
    logits: torch.Tensor, options: SamplingOptions, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidate token and its confidence (model probability) for each row of ``logits``."""
    logits = logits.float()
    probs = torch.softmax(logits, dim=-1)
    if options.temperature == 0:
        tokens = logits.argmax(dim=-1)
    else:
        filtered = _filter_logits(logits / options.temperature, options.top_k, options.top_p)
        sample_probs = torch.softmax(filtered, dim=-1)
        tokens = torch.multinomial(sample_probs, 1, generator=generator).squeeze(-1)
    conf = probs.gather(-1, tokens[:, None]).squeeze(-1)
    return tokens, conf


def never_sampled(denoiser: Denoiser) -> list[int]:
    """Tokens no hole may hold: the mask itself and the tokenizer's special tokens (chat
    markers, file separators), except the end tokens that absorb unused budget."""
    special = set(getattr(denoiser.tokenizer, "all_special_ids", None) or [])
    return sorted(({denoiser.mask_id} | special) - set(denoiser.end_ids))


@dataclass
class Bans:
    """What a position may not become: the never-sampled tokens anywhere, an end token at
    an exact-length position, a token the reviewer remasked there (``forbidden``), and
    whatever a healed hole's first tokens must not spell (``admissible``)."""

    never: torch.Tensor
    end_ids: torch.Tensor
    #: By canvas position: whether it belongs to an exact-length hole.
    exact: torch.Tensor
    forbidden: dict[int, set[int]] = field(default_factory=dict)
    admissible: Admissible | None = None

    @classmethod
    def of(cls, denoiser: Denoiser, length: int, exact_positions=(), device="cpu",
           admissible: Admissible | None = None) -> Bans:
        exact = torch.zeros(length, dtype=torch.bool, device=device)
        exact[list(exact_positions)] = True
        return cls(torch.tensor(never_sampled(denoiser), dtype=torch.long, device=device),
                   torch.tensor(sorted(denoiser.end_ids), dtype=torch.long, device=device),
                   exact, admissible=admissible)

    def apply(self, logits: torch.Tensor, positions: torch.Tensor, x: torch.Tensor) -> None:
        """Set to -inf, in place, what ``logits`` (a row for each of ``positions`` of the
        canvas ``x``) must not choose."""
        logits[:, self.never] = -math.inf
        if len(self.end_ids):
            rows = self.exact[positions].nonzero().flatten()
            logits[rows[:, None], self.end_ids] = -math.inf
        if not self.forbidden and self.admissible is None:
            return
        forbid(logits, positions, self.forbidden)
        allowed = self.admissible(x) if self.admissible is not None else {}
        row_of = {p: r for r, p in enumerate(positions.tolist())}
        for p, admits in allowed.items():
            if p in row_of:
                row = logits[row_of[p], : len(admits)]
                row.masked_fill_(~admits.to(row.device), -math.inf)

    def remask(self, x: torch.Tensor, remasks: list[Remask], mask_id: int) -> int:
        """Send the reviewer's positions back to the mask, their token forbidden there from
        now on; returns how many were reopened."""
        count = 0
        for r in remasks:
            token = int(x[r.position])
            if token == mask_id:
                continue
            x[r.position] = mask_id
            self.forbidden.setdefault(r.position, set()).add(
                token if r.forbid is None else r.forbid)
            count += 1
        return count


def forbid(logits: torch.Tensor, positions: torch.Tensor,
           forbidden: dict[int, set[int]]) -> None:
    """Set to -inf, in place, each token ``forbidden`` at a canvas position, in the rows
    of ``logits`` that score ``positions``."""
    row_of = {p: r for r, p in enumerate(positions.tolist())}
    pairs = [(row_of[p], t) for p, tokens in forbidden.items() if p in row_of for t in tokens]
    if pairs:
        rows, tokens = zip(*pairs, strict=True)
        logits[list(rows), list(tokens)] = -math.inf


def how_many(open_rows: int, steps_left: int | None, conf: torch.Tensor,
             threshold: float | None = None) -> int:
    """Tokens to commit this step: those whose confidence passes ``threshold`` (at least
    one), else the even split of the steps left (one a step when there is no schedule)."""
    if threshold is not None:
        k = max(1, int((conf >= threshold).sum()))
    elif steps_left is None:
        k = 1
    else:
        k = math.ceil(open_rows / max(1, steps_left))
    return min(k, open_rows)


def remask_order(options: SamplingOptions, n: int, generator: torch.Generator,
                 device: torch.device | str) -> torch.Tensor | None:
    """The score ``commit`` ranks by under random remasking (LLaDA's ``random``), or
    ``None`` to rank by confidence."""
    if options.remasking == "random" and options.threshold is None:
        return torch.rand(n, generator=generator, device=device)
    return None


def commit(x: torch.Tensor, positions: torch.Tensor, tokens: torch.Tensor,
           conf: torch.Tensor, k: int, score: torch.Tensor | None = None
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Write the ``k`` best of ``tokens`` (by ``score``, default their confidence) into the
    canvas ``x`` at their ``positions``; returns those positions and their confidence."""
    chosen = torch.topk(conf if score is None else score, k).indices
    where = positions[chosen]
    x[where] = tokens[chosen]
    return where, conf[chosen]


def _model_blocks(denoiser: Denoiser, x: torch.Tensor, positions: torch.Tensor
                  ) -> list[torch.Tensor] | None:
    """A block-diffusion family's own blocks (``denoiser.block_ids``, optional): the masks
    grouped by the model block they are read in, so that each block is decoded whole before
    the next, as the family was trained."""
    block_ids = getattr(denoiser, "block_ids", None)
    if block_ids is None or not len(positions):
        return None
    _, counts = torch.unique_consecutive(block_ids(x, positions), return_counts=True)
    return list(torch.split(positions, counts.tolist()))


def _blocks(positions: torch.Tensor, block_length: int | None) -> list[torch.Tensor]:
    if not block_length:
        return [positions]
    return list(torch.split(positions, block_length))


@torch.inference_mode()
def sample(
    denoiser: Denoiser,
    ids: list[int],
    mask_positions: list[int],
    options: SamplingOptions,
    *,
    exact_positions: frozenset[int] = frozenset(),
    review: Review | None = None,
    on_step: StepCallback | None = None,
    should_cancel: Callable[[], bool] | None = None,
    growth: Growth | None = None,
    ends: Ends | None = None,
    admissible: Admissible | None = None,
) -> Sampled:
    """Denoise ``mask_positions`` of ``ids``; the rest of the canvas is never changed.

    At auto-length positions the family's end tokens may be chosen (and are trimmed later);
    at ``exact_positions`` they are forbidden, as is the mask token everywhere;
    ``admissible`` names, for the canvas as it stands, positions that admit only the tokens
    of a boolean vocabulary mask (a healed hole's first tokens, ``infill.heal``). ``growth``
    (the grow length policy) opens auto positions as the model asks; ``ends`` closes each
    auto hole after its first committed end token.
    """
    run = _Run(denoiser, ids, mask_positions, options, exact_positions, growth, admissible)
    while True:
        bi = run.open_block()
        if bi is None:
            if review is None or not run.reviewed(review, finished=True):
                break
            continue
        if should_cancel is not None and should_cancel():
            raise Cancelled("the fill was cancelled")
        masks_before = run.masks_left()
        k = run.step(bi)
        if ends is not None:
            closed = ends.close(run.x)
            if growth is not None:
                growth.dropped += closed
        run.grow(bi)
        if review is not None and masks_before > k:
            run.reviewed(review, finished=False)
        if on_step is not None:
            left = run.masks_left()
            total = max(run.total_estimate, run.steps + (1 if left else 0))
            on_step(SamplerStep(run.steps, total, left, k, run.x))
    return Sampled(run.x.cpu(), run.confidence, run.steps, run.passes, run.remasked,
                   run.satisfied, run.bans.forbidden)


class _Run:
    """One ``sample`` call's state: the canvas, its blocks and their step budgets, the
    cache, the bans and the counts, with one method per part of a step."""

    def __init__(self, denoiser: Denoiser, ids: list[int], mask_positions: list[int],
                 options: SamplingOptions, exact_positions: frozenset[int],
                 growth: Growth | None, admissible: Admissible | None) -> None:
        self.denoiser, self.options, self.growth = denoiser, options, growth
        device = self.device = torch.device(denoiser.device)
        self.x = torch.tensor(ids, dtype=torch.long, device=device)
        self.mask_id = denoiser.mask_id
        self.generator = torch.Generator(device=device).manual_seed(options.seed)
        self.positions = torch.tensor(sorted(mask_positions), dtype=torch.long, device=device)
        own = None if growth or options.block_length else _model_blocks(denoiser, self.x,
                                                                          self.positions)
        self.blocks = own or _blocks(self.positions, None if growth else options.block_length)
        if growth is not None:
            growth.prepare(self.x)
        total_masks = self.masks_left()
        steps_wanted = options.steps or total_masks
        # Steps per block in proportion to its size; every block gets at least one.
        self.block_steps = [max(1, round(steps_wanted * len(b) / max(total_masks, 1)))
                            for b in self.blocks]
        self.total_estimate = sum(self.block_steps)
        self.bans = Bans.of(denoiser, len(self.x), exact_positions, device, admissible)
        self.confidence: dict[int, float] = {}
        self.remask_budget = options.max_remask_rounds * max(total_masks, 1)
        self.remasked = self.steps = self.passes = 0
        self.satisfied: bool | None = None
        self.use_cache = options.cache and isinstance(denoiser, CachedDenoiser)
        self.cache, self.cache_block, self.since_refresh = None, -1, 0
        self.block, self.block_step = 0, 0
        self.frontier: list[int] = []
        self.p_end: torch.Tensor | None = None

    def masks_left(self, where: torch.Tensor | None = None) -> int:
        where = self.positions if where is None else where
        return int((self.x[where] == self.mask_id).sum())

    def open_block(self) -> int | None:
        """The first block that still has masks (a review may reopen an earlier one)."""
        bi = next((i for i, b in enumerate(self.blocks) if self.masks_left(b)), None)
        if bi is not None and bi != self.block:
            self.block, self.block_step = bi, 0
        return bi

    def logits(self, bi: int, rows: torch.Tensor) -> torch.Tensor:
        """One forward pass for ``rows``: plain, or filling the block's cache, or from it."""
        x, options = self.x[None], self.options
        self.passes += 1
        if not self.use_cache:
            return self.denoiser.logits(x, positions=rows)[0].float()
        if self.cache is None or self.cache_block != bi or (
            options.refresh_every and self.since_refresh >= options.refresh_every
        ):
            logits, self.cache = self.denoiser.prefill(x, rows)
            self.cache_block, self.since_refresh = bi, 0
            return logits[0].float()
        self.since_refresh += 1
        return self.denoiser.cached_logits(x, rows, self.cache, self.blocks[bi])[0].float()

    def step(self, bi: int) -> int:
        """Choose and commit the block's next tokens; returns how many were committed."""
        block = self.blocks[bi][self.x[self.blocks[bi]] == self.mask_id]
        self.frontier = self.growth.frontier() if self.growth is not None else []
        frontier = torch.tensor(self.frontier, dtype=torch.long, device=self.device)
        logits = self.logits(bi, torch.cat([block, frontier]))
        if self.frontier:
            self.p_end = torch.softmax(logits[len(block):], dim=-1)[:, self.bans.end_ids].sum(-1)
            logits = logits[: len(block)]
        self.bans.apply(logits, block, self.x)
        tokens, conf = choose_tokens(logits, self.options, self.generator)
        k = how_many(len(block), self.block_steps[bi] - self.block_step, conf,
                     self.options.threshold)
        score = remask_order(self.options, len(block), self.generator, self.device)
        where, chosen = commit(self.x, block, tokens, conf, k, score)
        self.confidence.update(zip(where.tolist(), chosen.tolist(), strict=True))
        self.steps += 1
        self.block_step += 1
        return k

    def grow(self, bi: int) -> None:
        """The grow policy opens masks where the step's frontier doubted the end."""
        if self.growth is None or not self.frontier:
            return
        added = self.growth.grow(self.x, dict(zip(self.frontier, self.p_end.tolist(),
                                                  strict=True)))
        if added and self.options.steps is None:
            self.block_steps[bi] += added
            self.total_estimate += added

    def reviewed(self, review: Review, finished: bool) -> bool:
        """Ask the reviewer and reopen what it rejects (within the remask budget); returns
        whether anything was reopened. ``finished``: no mask is left, so the answer also
        says whether the fill satisfies the constraint."""
        remasks = review(self.x)
        if finished:
            self.satisfied = not remasks
        if not remasks or self.remasked + len(remasks) > self.remask_budget:
            return False
        reopened = self.bans.remask(self.x, remasks, self.mask_id)
        self.remasked += reopened
        if reopened:
            self.total_estimate += 1
            self.cache = None
        return bool(reopened)
