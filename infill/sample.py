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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from .types import Cancelled, Denoiser, Remask, SamplingOptions

if TYPE_CHECKING:
    from .length import Ends, Growth

Review = Callable[[torch.Tensor], list[Remask]]
#: ``on_step(step, total, masks left, committed this step, canvas)``: every sampler's
#: progress callback (the engine turns it into a ``StepInfo``).
StepCallback = Callable[[int, int, int, int, torch.Tensor], None]
Admissible = Callable[[torch.Tensor], dict[int, torch.Tensor]]


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
        row_of = {p: r for r, p in enumerate(positions.tolist())}
        pairs = [(row_of[p], t) for p, tokens in self.forbidden.items() if p in row_of
                 for t in tokens]
        if pairs:
            rows_t, tokens_t = zip(*pairs, strict=True)
            logits[list(rows_t), list(tokens_t)] = -math.inf
        allowed = self.admissible(x) if self.admissible is not None else {}
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


def commit(x: torch.Tensor, positions: torch.Tensor, tokens: torch.Tensor,
           conf: torch.Tensor, k: int, confidence: dict[int, float],
           score: torch.Tensor | None = None) -> None:
    """Write the ``k`` best of ``tokens`` (by ``score``, default their confidence) into the
    canvas ``x`` at their ``positions``, and note their confidence."""
    chosen = torch.topk(conf if score is None else score, k).indices
    where = positions[chosen]
    x[where] = tokens[chosen]
    confidence.update(zip(where.tolist(), conf[chosen].tolist(), strict=True))


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
    device = torch.device(getattr(denoiser, "device", None) or "cpu")
    x = torch.tensor(ids, dtype=torch.long, device=device)
    mask_id = denoiser.mask_id
    generator = torch.Generator(device=device).manual_seed(options.seed)
    positions = torch.tensor(sorted(mask_positions), dtype=torch.long, device=device)
    blocks = _blocks(positions, None if growth else options.block_length)
    if growth is not None:
        growth.prepare(x)

    def masks_left(where: torch.Tensor = positions) -> int:
        return int((x[where] == mask_id).sum())

    total_masks = masks_left()
    steps_wanted = options.steps or total_masks
    # Steps per block in proportion to its size; every block gets at least one.
    block_steps = [max(1, round(steps_wanted * len(b) / max(total_masks, 1))) for b in blocks]
    bans = Bans.of(denoiser, len(x), exact_positions, device, admissible)
    confidence: dict[int, float] = {}
    remask_budget = options.max_remask_rounds * max(total_masks, 1)
    remasked = steps = passes = 0
    satisfied: bool | None = None
    total_estimate = sum(block_steps)

    use_cache = options.cache and hasattr(denoiser, "prefill")
    cache, cache_block, since_refresh = None, -1, 0
    bi = block_step = 0
    while True:
        # The first block that still has masks (a review may reopen an earlier one).
        bi_now = next((i for i, b in enumerate(blocks) if masks_left(b)), None)
        if bi_now is None:
            if review is None:
                break
            remasks = review(x)
            satisfied = not remasks
            if not remasks or remasked + len(remasks) > remask_budget:
                break
            reopened = bans.remask(x, remasks, mask_id)
            if not reopened:
                break
            remasked += reopened
            total_estimate += 1
            cache = None
            continue
        if bi_now != bi:
            bi, block_step = bi_now, 0
        block = blocks[bi][x[blocks[bi]] == mask_id]
        if should_cancel is not None and should_cancel():
            raise Cancelled("the fill was cancelled")

        masks_before = masks_left()
        frontier = growth.frontier() if growth is not None else []
        pos_t = torch.cat([block, torch.tensor(frontier, dtype=torch.long, device=device)])
        if not use_cache:
            logits = denoiser.logits(x[None], positions=pos_t)[0].float()
        elif cache is None or cache_block != bi or (
            options.refresh_every and since_refresh >= options.refresh_every
        ):
            logits, cache = denoiser.prefill(x[None], pos_t)
            logits, cache_block, since_refresh = logits[0].float(), bi, 0
        else:
            logits = denoiser.cached_logits(x[None], pos_t, cache, blocks[bi])[0].float()
            since_refresh += 1
        passes += 1
        if frontier:
            p_end = torch.softmax(logits[len(block):], dim=-1)[:, bans.end_ids].sum(-1)
            logits = logits[: len(block)]
        bans.apply(logits, block, x)
        tokens, conf = choose_tokens(logits, options, generator)

        remaining_steps = block_steps[bi] - block_step
        if options.threshold is not None:
            k = max(1, int((conf >= options.threshold).sum()))
        else:
            k = math.ceil(len(block) / max(1, remaining_steps))
        k = min(k, len(block))
        score = None
        if options.remasking == "random" and options.threshold is None:
            score = torch.rand(len(block), generator=generator, device=device)
        commit(x, block, tokens, conf, k, confidence, score)
        steps += 1
        block_step += 1
        if ends is not None:
            closed = ends.close(x)
            if growth is not None:
                growth.dropped += closed
        if growth is not None and frontier:
            added = growth.grow(x, dict(zip(frontier, p_end.tolist(), strict=True)))
            if added and options.steps is None:
                block_steps[bi] += added
                total_estimate += added
        if review is not None and masks_before > k:
            remasks = review(x)
            if remasks and remasked + len(remasks) <= remask_budget:
                remasked += bans.remask(x, remasks, mask_id)
                total_estimate += 1
                cache = None
        if on_step is not None:
            left = masks_left()
            on_step(steps, max(total_estimate, steps + (1 if left else 0)), left, k, x)

    return Sampled(x.cpu(), confidence, steps, passes, remasked, satisfied, bans.forbidden)
