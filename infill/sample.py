"""The reverse process: from a canvas full of masks to committed tokens.

Each step is one forward pass. Every masked position gets a candidate token and a
confidence; the most confident are committed (LLaDA's low-confidence remasking on a step
schedule, or Fast-dLLM's confidence threshold), the rest stay masked. A reviewer (the
syntax constraint) may send committed tokens back to the mask, with that token forbidden
at that position from then on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from .types import Cancelled, Denoiser, Remask, SamplingOptions

if TYPE_CHECKING:
    from .length import Growth

Review = Callable[[torch.Tensor], list[Remask]]
StepCallback = Callable[[int, int, int, int, torch.Tensor], None]


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


def close_after_end(x: torch.Tensor, runs: Sequence[Sequence[int]], end_ids: frozenset[int],
                    mask_id: int, end_id: int) -> int:
    """Close the masks after the first end token committed in each auto-length run: a fill
    is its text and then padding, so nothing may follow an end (left to right, a block
    after the end would otherwise be filled and glued on when the ends are trimmed).
    Returns how many masks it closed."""
    closed = 0
    for run in runs:
        ended = next((j for j, p in enumerate(run) if int(x[p]) in end_ids), None)
        if ended is None:
            continue
        for p in run[ended + 1:]:
            if int(x[p]) == mask_id:
                x[p] = end_id
                closed += 1
    return closed


def _blocks(positions: list[int], block_length: int | None) -> list[list[int]]:
    if not block_length:
        return [positions]
    return [positions[i : i + block_length] for i in range(0, len(positions), block_length)]


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
    auto_runs: Sequence[Sequence[int]] = (),
    admissible: Callable[[torch.Tensor], dict[int, torch.Tensor]] | None = None,
) -> Sampled:
    """Denoise ``mask_positions`` of ``ids``; the rest of the canvas is never changed.

    At auto-length positions the family's end tokens may be chosen (and are trimmed later);
    at ``exact_positions`` they are forbidden, as is the mask token everywhere;
    ``admissible`` names, for the canvas as it stands, positions that admit only the tokens
    of a boolean vocabulary mask (a healed hole's first tokens, ``infill.heal``). ``growth``
    (the grow length policy) opens auto positions as the model asks; each of ``auto_runs``
    (an auto hole's positions, in order) is closed after its first committed end token.
    """
    device = _device_of(denoiser)
    x = torch.tensor(ids, dtype=torch.long, device=device)
    mask_id = denoiser.mask_id
    generator = torch.Generator(device=device).manual_seed(options.seed)
    positions = sorted(mask_positions)
    blocks = _blocks(positions, None if growth else options.block_length)
    if growth is not None:
        growth.prepare(x)
    total_masks = sum(1 for p in positions if int(x[p]) == mask_id)
    steps_wanted = options.steps or total_masks
    # Steps per block in proportion to its size; every block gets at least one.
    block_steps = [max(1, round(steps_wanted * len(b) / max(total_masks, 1))) for b in blocks]

    never = torch.tensor(never_sampled(denoiser), dtype=torch.long, device=device)
    end_ids = torch.tensor(sorted(denoiser.end_ids), dtype=torch.long, device=device)
    forbidden: dict[int, set[int]] = {}
    confidence: dict[int, float] = {}
    remask_budget = options.max_remask_rounds * max(total_masks, 1)
    remasked = 0
    steps = passes = 0
    satisfied: bool | None = None
    total_estimate = sum(block_steps)

    def masked_in(block: list[int]) -> list[int]:
        return [p for p in block if int(x[p]) == mask_id]

    use_cache = options.cache and hasattr(denoiser, "prefill")
    cache, cache_block, since_refresh = None, -1, 0
    bi = 0
    block_step = 0
    while True:
        # Find the first block that still has masks (a review may reopen an earlier one).
        open_blocks = [i for i, b in enumerate(blocks) if masked_in(b)]
        if not open_blocks:
            if review is None:
                break
            remasks = review(x)
            satisfied = not remasks
            if not remasks:
                break
            if remasked + len(remasks) > remask_budget:
                break
            reopened = _apply_remasks(x, remasks, mask_id, forbidden)
            if not reopened:
                break
            remasked += reopened
            total_estimate += 1
            cache = None
            continue
        if open_blocks[0] != bi:
            bi, block_step = open_blocks[0], 0
        block = masked_in(blocks[bi])
        if should_cancel is not None and should_cancel():
            raise Cancelled("the fill was cancelled")

        all_masked = [p for p in positions if int(x[p]) == mask_id]
        frontier = growth.frontier() if growth is not None else []
        pos_t = torch.tensor(block + frontier, dtype=torch.long, device=device)
        if not use_cache:
            logits = denoiser.logits(x[None], positions=pos_t)[0].float()
        elif cache is None or cache_block != bi or (
            options.refresh_every and since_refresh >= options.refresh_every
        ):
            logits, cache = denoiser.prefill(x[None], pos_t)
            logits, cache_block, since_refresh = logits[0].float(), bi, 0
        else:
            active = torch.tensor(blocks[bi], dtype=torch.long, device=device)
            logits = denoiser.cached_logits(x[None], pos_t, cache, active)[0].float()
            since_refresh += 1
        passes += 1
        if frontier:
            p_end = torch.softmax(logits[len(block) :], dim=-1)[:, end_ids].sum(-1).tolist()
            logits = logits[: len(block)]
        logits[:, never] = -math.inf
        for row, p in enumerate(block):
            if p in exact_positions and len(end_ids):
                logits[row, end_ids] = -math.inf
            if p in forbidden:
                logits[row, list(forbidden[p])] = -math.inf
        allowed = admissible(x) if admissible is not None else {}
        for row, p in enumerate(block):
            if p in allowed:
                admits = allowed[p].to(device)
                logits[row, : len(admits)] = logits[row, : len(admits)].masked_fill(
                    ~admits, -math.inf)
        tokens, conf = choose_tokens(logits, options, generator)

        remaining_steps = block_steps[bi] - block_step
        if options.threshold is not None:
            k = max(1, int((conf >= options.threshold).sum()))
        else:
            k = math.ceil(len(block) / max(1, remaining_steps))
        k = min(k, len(block))
        if options.remasking == "random" and options.threshold is None:
            score = torch.rand(len(block), generator=generator, device=device)
        else:
            score = conf
        chosen = torch.topk(score, k).indices.tolist()
        for row in chosen:
            p = block[row]
            x[p] = tokens[row]
            confidence[p] = float(conf[row])
        steps += 1
        block_step += 1
        if auto_runs and denoiser.end_ids:
            closed = close_after_end(x, auto_runs, denoiser.end_ids, mask_id,
                                     min(denoiser.end_ids))
            if growth is not None:
                growth.dropped += closed
        if growth is not None and frontier:
            added = growth.grow(x, dict(zip(frontier, p_end, strict=True)))
            if added and options.steps is None:
                block_steps[bi] += added
                total_estimate += added
        if review is not None and len(all_masked) > k:
            remasks = review(x)
            if remasks and remasked + len(remasks) <= remask_budget:
                remasked += _apply_remasks(x, remasks, mask_id, forbidden)
                total_estimate += 1
                cache = None
        if on_step is not None:
            left = sum(1 for p in positions if int(x[p]) == mask_id)
            on_step(steps, max(total_estimate, steps + (1 if left else 0)), left, k, x)

    return Sampled(x.cpu(), confidence, steps, passes, remasked, satisfied, forbidden)


def _apply_remasks(
    x: torch.Tensor, remasks: list[Remask], mask_id: int, forbidden: dict[int, set[int]]
) -> int:
    count = 0
    for r in remasks:
        token = int(x[r.position])
        if token == mask_id:
            continue
        x[r.position] = mask_id
        forbidden.setdefault(r.position, set()).add(token if r.forbid is None else r.forbid)
        count += 1
    return count


def _device_of(denoiser: Denoiser) -> torch.device:
    device = getattr(denoiser, "device", None)
    return torch.device(device) if device is not None else torch.device("cpu")
