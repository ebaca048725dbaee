"""From LSP params to the engine's request: ranges, offsets, options, markers, limits.

Every function here raises ``InfillError`` or ``PositionError`` with a one-line reason and
never a JSON-RPC error: :func:`lsp_server.errors.user_errors` turns both into InvalidParams
at the handler, in one place.
"""

from __future__ import annotations

from typing import Any, Protocol

from lsprotocol import types

import grammars
from infill.edits import edits_from_result
from infill.holes import find_markers, validate_holes
from infill.types import (
    Constraint,
    Hole,
    InfillError,
    InfillRequest,
    InfillResult,
    Length,
    LengthOptions,
    SamplingOptions,
)

from .config import Settings, merge
from .positions import PositionError, line_spans, offset_at, range_at, range_offsets

FILL_METHOD = "lacuna/fill"

#: The most holes (ranges or markers) one request may fill: each is its own canvas at
#: worst, and 200 markers took 290 s on one worker that every other request waits for.
MAX_HOLES = 64
#: The most masked tokens (the sum of the holes' budgets) one request may ask for.
MAX_MASK_TOKENS = 4096
#: LSP positions are ``uinteger`` (0 .. 2**31 - 1).
MAX_POSITION = 2**31 - 1

#: Per-request options of lacuna/fill; the model, device and quantization are settings only.
OPTION_KEYS = {"steps", "threshold", "temperature", "seed", "blockLength", "budget",
               "contextTokens", "marker", "syntaxConstraint"}


class Document(Protocol):
    language_id: str | None


def check_text(text: str) -> None:
    """A document the tokenizer can read: a lone surrogate (``\\ud83d``) is no text."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InfillError(f"the document holds a lone surrogate at offset {e.start}: "
                          "it is not valid Unicode text") from None


def check_limits(holes: list[Hole]) -> None:
    """Bound one request's work (:data:`MAX_HOLES`, :data:`MAX_MASK_TOKENS`)."""
    if len(holes) > MAX_HOLES:
        raise InfillError(f"{len(holes)} holes in one request: at most {MAX_HOLES} "
                          "(MAX_HOLES); fill them in several requests")
    tokens = sum(h.length.tokens for h in holes)
    if tokens > MAX_MASK_TOKENS:
        raise InfillError(f"{tokens} masked tokens in one request: at most {MAX_MASK_TOKENS} "
                          "(MAX_MASK_TOKENS); lower the budget or fill fewer holes")


def sampling(settings: Settings) -> SamplingOptions:
    """The sampler options of ``settings`` (ghost text passes ``settings.for_ghost_text()``)."""
    return SamplingOptions(
        steps=settings.steps,
        threshold=settings.threshold,
        temperature=settings.temperature,
        seed=settings.seed,
        block_length=settings.block_length,
        cache=settings.cache,
    )


def make_request(doc: Document, text: str, holes: list[Hole], settings: Settings,
                 constrain: bool, ghost: bool = False) -> InfillRequest:
    """The engine's request; ``ghost``: for ghost text, whose ``auto`` length policy means
    ``grow`` (fewest passes) for a model with no policy of its own."""
    check_text(text)
    check_limits(holes)
    return InfillRequest(
        text=text,
        holes=validate_holes(text, holes),
        language=doc.language_id or "plaintext",
        options=sampling(settings),
        constrain=constrain,
        context_tokens=settings.context_tokens,
        length=LengthOptions(policy=settings.length_policy,
                             fallback="grow" if ghost else "absorb"),
    )


def marker_holes(text: str, settings: Settings) -> list[Hole]:
    holes = find_markers(text, settings.marker, settings.budget)
    check_limits(holes)
    return holes


def constraint(language: str, want: bool | str) -> tuple[Constraint | None, str]:
    """The syntax constraint for ``language`` and a word for the stats; ``want`` "require"
    with no grammar is the user's error."""
    try:
        return grammars.constraint_for(language, want)
    except LookupError as e:
        raise InfillError(str(e)) from None


def parse_position(p: Any, where: str) -> types.Position:
    ok = isinstance(p, dict) and all(
        isinstance(p.get(k), int) and not isinstance(p.get(k), bool)
        and 0 <= p.get(k) <= MAX_POSITION
        for k in ("line", "character")
    )
    if not ok:
        raise InfillError(f"{where} must be {{line, character}} with integers in "
                          f"0..{MAX_POSITION}, got {p!r}")
    return types.Position(line=p["line"], character=p["character"])


def parse_range(raw: Any, where: str) -> types.Range:
    if not isinstance(raw, dict):
        raise InfillError(f"{where} must be an LSP range {{start, end}}, got {raw!r}")
    return types.Range(start=parse_position(raw.get("start"), f"{where}.start"),
                       end=parse_position(raw.get("end"), f"{where}.end"))


def range_json(rng: types.Range) -> dict:
    return {"start": {"line": rng.start.line, "character": rng.start.character},
            "end": {"line": rng.end.line, "character": rng.end.character}}


def offsets(text: str, rng: types.Range, enc: str, spans=None, where: str = "range"
            ) -> tuple[int, int]:
    try:
        return range_offsets(text, rng, enc, strict=True, spans=spans)
    except PositionError as e:
        raise PositionError(f"{where}: {e}") from None


def offset(text: str, pos: types.Position, enc: str, where: str) -> int:
    try:
        return offset_at(text, pos, enc, strict=True)
    except PositionError as e:
        raise PositionError(f"{where}: {e}") from None


def _fmt(rng: types.Range) -> str:
    return f"{rng.start.line}:{rng.start.character}-{rng.end.line}:{rng.end.character}"


def check_overlaps(ranges: list[types.Range], spans: list[tuple[int, int]]) -> None:
    order = sorted(range(len(spans)), key=lambda i: spans[i])
    for i, j in zip(order, order[1:], strict=False):
        (a0, a1), (b0, b1) = spans[i], spans[j]
        if b0 < a1 or (a0, a1) == (b0, b1):
            raise InfillError(
                f"ranges[{i}] ({_fmt(ranges[i])}) and ranges[{j}] ({_fmt(ranges[j])}) overlap"
            )


def range_holes(text: str, raw: Any, enc: str, budget: int) -> list[Hole]:
    """``lacuna/fill``'s ``ranges`` as holes, refused beyond :data:`MAX_HOLES` before any
    is parsed (10,000 ranges were once accepted and never finished)."""
    if not isinstance(raw, list):
        raise InfillError(f"{FILL_METHOD}: ranges must be a list of LSP ranges")
    if len(raw) > MAX_HOLES:
        raise InfillError(f"{len(raw)} ranges in one request: at most {MAX_HOLES} "
                          "(MAX_HOLES); fill them in several requests")
    spans = line_spans(text)
    parsed = [parse_range(r, f"ranges[{i}]") for i, r in enumerate(raw)]
    found = [offsets(text, r, enc, spans, f"ranges[{i}]") for i, r in enumerate(parsed)]
    check_overlaps(parsed, found)
    return [Hole(a, b, Length.auto(budget)) for a, b in found]


def fill_options(settings: Settings, raw: Any) -> tuple[Settings, bool | str]:
    """``lacuna/fill``'s ``options`` over ``settings``, and the syntax constraint wanted."""
    if raw is None:
        return settings, settings.syntax_constraint
    if not isinstance(raw, dict):
        raise InfillError(f"{FILL_METHOD}: options must be an object, got {raw!r}")
    raw = dict(raw)
    constrain: bool | str = settings.syntax_constraint
    if "syntaxConstraint" in raw:
        constrain = raw.pop("syntaxConstraint")
        if constrain not in (True, False, "require"):
            raise InfillError(f"{FILL_METHOD}: options.syntaxConstraint must be true, false "
                              f"or 'require', got {constrain!r}")
    unknown = sorted(set(raw) - OPTION_KEYS)
    if unknown:
        raise InfillError(f"{FILL_METHOD}: unknown option(s) {', '.join(unknown)} "
                          f"(known: {', '.join(sorted(OPTION_KEYS))})")
    merged, problems = merge(settings, raw)
    if problems:
        raise InfillError(f"{FILL_METHOD}: " + "; ".join(problems))
    return merged, constrain


def to_lsp_edits(text: str, result: InfillResult, encoding: str) -> list[types.TextEdit]:
    spans = line_spans(text)
    return [
        types.TextEdit(range=range_at(text, e.start, e.end, encoding, spans=spans),
                       new_text=e.new_text)
        for e in edits_from_result(result)
    ]
