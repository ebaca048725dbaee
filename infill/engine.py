"""One call from a request to filled holes: plan, sample each canvas, trim, decode."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch

from .expand import Resized
from .heal import Healing, unhealed
from .holes import validate_holes
from .length import denoise
from .lines import shape_fill, without_doubled_indent
from .plan import Canvas, heals_holes, plan
from .sample import Sampled, SamplerStep, StepCallback, never_sampled
from .types import (
    CanvasView,
    Constraint,
    Denoiser,
    HoleFill,
    HoleView,
    InfillRequest,
    InfillResult,
    StepInfo,
)


def decoder_for(denoiser: Denoiser) -> Callable[[list[int]], str]:
    """Token ids to text exactly as the tokenizer would write them (no cleanup)."""
    tok = denoiser.tokenizer

    def decode(ids: list[int]) -> str:
        return tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    return decode


def fill(
    request: InfillRequest,
    denoiser: Denoiser,
    *,
    constraint: Constraint | None = None,
    on_step: Callable[[StepInfo], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> InfillResult:
    """Fill every hole of ``request``; raises InfillError for bad input, Cancelled on cancel.

    The constraint runs only when ``request.constrain`` is set and one is given.
    """
    started = time.perf_counter()
    holes = validate_holes(request.text, request.holes)
    canvases = plan(request.text, holes, denoiser, request.context_tokens)
    decode = decoder_for(denoiser)
    active = constraint if request.constrain else None

    fills: list[HoleFill] = []
    steps = passes = remasked = 0
    satisfied: bool | None = None if active is None else True
    lengths: list[dict[str, object]] = []
    for canvas in canvases:
        review = None
        if active is not None:
            review = _reviewer(active, request, canvas, denoiser, decode)
        step_cb = None
        if on_step is not None:
            step_cb = _progress(on_step, canvas, denoiser, decode, steps)
        if hasattr(denoiser, "plan_canvas"):  # a family that reads the layout (two views)
            denoiser.plan_canvas(canvas, request.text)
        healing = _healing(canvas, denoiser)
        done, report = denoise(canvas, request, denoiser, review, step_cb, should_cancel,
                               healing.admissible if healing else None)
        if isinstance(done, Resized):  # the expand policy moved the holes
            canvas = done.relaid(canvas)
        new_fills = _fills(canvas, done, denoiser, decode, request)
        lengths.append({**report, "budget": [r.hole.length.tokens for r in canvas.runs],
                        "tokens": [len(f.token_ids) for f in new_fills]})
        fills += new_fills
        steps += done.steps
        passes += done.forward_passes
        remasked += done.remasked
        if done.satisfied is False:
            satisfied = False
    return InfillResult(
        fills=fills,
        steps=steps,
        forward_passes=passes,
        constraint_satisfied=satisfied,
        remasked=remasked,
        canvases=len(canvases),
        seconds=time.perf_counter() - started,
        length=lengths,
    )


def _healing(canvas: Canvas, denoiser: Denoiser) -> Healing | None:
    """For a family that heals (``denoiser.heals``): what each healed hole must spell."""
    runs = [(list(r.positions), r.heal, not r.exact) for r in canvas.runs if r.heal]
    if not heals_holes(denoiser) or not runs:
        return None
    vocab = getattr(denoiser, "tokens", None) or len(denoiser.tokenizer)
    special = frozenset(never_sampled(denoiser)) | denoiser.end_ids
    return Healing(denoiser.tokenizer, vocab, denoiser.mask_id, denoiser.end_ids, special,
                   runs)


def _kept(tokens: list[int], denoiser: Denoiser) -> list[int]:
    """A hole's tokens without the end/padding tokens that absorbed its unused budget."""
    return [t for t in tokens if t not in denoiser.end_ids and t != denoiser.mask_id]


def _fills(
    canvas: Canvas,
    done: Sampled,
    denoiser: Denoiser,
    decode: Callable[[list[int]], str],
    request: InfillRequest,
) -> list[HoleFill]:
    out = []
    ids = done.ids.tolist()
    for run in canvas.runs:
        tokens = [ids[p] for p in run.positions]
        kept_pos = [p for p in run.positions if ids[p] not in denoiser.end_ids]
        kept = _kept(tokens, denoiser)
        text = decode(kept)
        if run.heal:
            text = unhealed(text, run.heal)  # the document already has this text
        if request.line_aware and not run.exact:
            text = shape_fill(text, request.text, run.hole.start, run.hole.end,
                              ended=len(kept) < len(tokens))
        if request.line_aware:
            text = without_doubled_indent(text, request.text, run.hole.end)
        out.append(
            HoleFill(
                hole=run.hole,
                text=text,
                token_ids=kept,
                confidence=[done.confidence.get(p, 0.0) for p in kept_pos],
                trimmed=len(tokens) - len(kept),
            )
        )
    return out


def _spans(canvas: Canvas, runs: Sequence[range] | None) -> list[range]:
    """Where each hole lies now: the plan's runs, or those of a canvas that grew or shrank
    (the expand policy passes them with each callback)."""
    return [r.positions for r in canvas.runs] if runs is None else list(runs)


def _views(canvas: Canvas, x: torch.Tensor, runs: Sequence[range] | None = None
           ) -> list[HoleView]:
    ids = x.tolist()
    return [
        HoleView(r.hole, list(span), [ids[p] for p in span], r.heal)
        for r, span in zip(canvas.runs, _spans(canvas, runs), strict=True)
    ]


def _reviewer(
    constraint: Constraint,
    request: InfillRequest,
    canvas: Canvas,
    denoiser: Denoiser,
    decode: Callable[[list[int]], str],
):
    """``review(x)``: the constraint's remasks for the canvas ``x``; ``review.accepts(x)``:
    whether a finished canvas has no new error (the constraint's ``check`` where it has
    one: a draft is judged whole, not token by token); ``review.unused(x)``: the
    parameters the functions holding a hole leave unread (``grammars.usage``; 0 for a
    constraint that does not count them)."""

    def view(x: torch.Tensor, runs: Sequence[range] | None = None) -> CanvasView:
        return CanvasView(
            text=request.text,
            language=request.language,
            holes=_views(canvas, x, runs),
            mask_id=denoiser.mask_id,
            end_ids=denoiser.end_ids,
            tokenizer=denoiser.tokenizer,
            decode=decode,
        )

    def review(x: torch.Tensor, runs: Sequence[range] | None = None):
        return constraint.review(view(x, runs))

    check = getattr(constraint, "check", None)
    review.accepts = lambda x: not (check(view(x)) if check else review(x))
    unused = getattr(constraint, "unused_parameters", None)
    review.unused = (lambda x: unused(view(x))) if unused else (lambda x: 0)
    return review


def _progress(
    on_step: Callable[[StepInfo], None],
    canvas: Canvas,
    denoiser: Denoiser,
    decode: Callable[[list[int]], str],
    offset: int,
) -> StepCallback:
    """The sampler's ``SamplerStep`` as the user's ``StepInfo`` (counted across canvases,
    the holes' texts rendered only when asked)."""
    def report(s: SamplerStep) -> None:
        def texts() -> list[str]:
            ids = s.canvas.tolist()
            return [decode(_kept([ids[p] for p in span], denoiser))
                    for span in _spans(canvas, s.runs)]

        on_step(StepInfo(offset + s.step, offset + s.total, s.masks_left, s.committed, texts))

    return report
