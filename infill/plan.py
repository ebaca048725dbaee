"""Planning: tokenize around the holes, choose context windows, lay out mask runs.

A canvas is one sequence the model sees: ``prefix_ids + context + masks + context + ... +
suffix_ids``. Holes close enough to share the model's window share one canvas and are
denoised together; holes too far apart get canvases of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .types import Denoiser, Hole, InfillError

#: A token covers at least one character, usually three or four; tokenizing this many
#: characters per wanted token keeps huge files cheap without starving the window.
CHARS_PER_TOKEN_CAP = 32
#: Holes share a canvas only if each keeps at least this much context on each side.
MIN_SIDE_CONTEXT = 16
#: A windowed context starts at a line start, up to this many tokens before where the
#: budget alone would start it, so that typing on a line keeps the window's start (and a
#: causal model's cache of it) where it was.
LINE_ANCHOR_SLACK = 48


def heals_holes(denoiser: Denoiser) -> bool:
    """Whether the family heals (``denoiser.heals``, optional): each hole also rewrites the
    context token before it, so that a hole can start inside a word."""
    return bool(getattr(denoiser, "heals", False))


@dataclass(frozen=True)
class MaskRun:
    """The canvas positions of one hole."""

    hole: Hole
    positions: range
    #: Document text right before the hole kept out of the context: trailing spaces (see
    #: ``healed_end``) and, for families that heal, the last context token. The fill must
    #: begin with it (``infill.heal``); the engine drops it again, since the document has it.
    heal: str = ""

    @property
    def exact(self) -> bool:
        return self.hole.length.mode == "exact"


@dataclass(frozen=True)
class Canvas:
    ids: list[int]
    runs: list[MaskRun]
    #: Document characters ``[start, end)`` whose tokens are in the canvas as context.
    window: tuple[int, int]


@dataclass(frozen=True)
class _Tokens:
    """A tokenized stretch of the document: ids and absolute character offsets."""

    ids: list[int]
    offsets: list[tuple[int, int]]
    start: int
    end: int
    #: The stretch was cut short because it was huge; its far edge is not exact.
    clipped: bool = False


def _tokenize(tokenizer: object, text: str, start: int, end: int, *, keep: str,
              cap: int) -> _Tokens:
    """Tokens of ``text[start:end]`` with document offsets from the tokenizer itself.

    Huge stretches are clipped to ``cap`` characters on the side away from the hole
    (``keep`` says which end matters) and the token at the cut is dropped, since it was
    made from half a word.
    """
    clipped = end - start > cap
    if clipped:
        start, end = (end - cap, end) if keep == "end" else (start, start + cap)
    enc = tokenizer(text[start:end], add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    offsets = [(start + a, start + b) for a, b in enc["offset_mapping"]]
    if clipped and ids:
        ids, offsets = (ids[1:], offsets[1:]) if keep == "end" else (ids[:-1], offsets[:-1])
    return _Tokens(ids, offsets, start, end, clipped)


def _heal_last_token(tokens: _Tokens) -> _Tokens:
    """``tokens`` without the last token (and any sharing its first character): a context
    that ends mid-token is a state the tokenizer never produces (``"\n"`` before an
    indented line is one token with the indentation), so the fill regenerates it."""
    if not tokens.ids:
        return tokens
    start = tokens.offsets[-1][0]
    keep = len(tokens.ids)
    while keep and tokens.offsets[keep - 1][0] >= start:
        keep -= 1
    return _Tokens(tokens.ids[:keep], tokens.offsets[:keep], tokens.start, start, tokens.clipped)


def _positions(hole: Hole, heals: bool) -> int:
    """Canvas positions of ``hole``: an exact hole of a family that heals gets one more,
    for the token that spells the healed text (an auto budget already has room)."""
    return hole.length.tokens + (1 if heals and hole.length.mode == "exact" else 0)


def plan(
    text: str,
    holes: Sequence[Hole],
    denoiser: Denoiser,
    context_tokens: int | None = None,
) -> list[Canvas]:
    """Canvases for validated, sorted ``holes`` that fit ``denoiser.max_length``.

    A family with ``heals`` set loses the last context token before each hole to the
    hole's ``heal`` text (token healing).
    """
    tok = denoiser.tokenizer
    heals = heals_holes(denoiser)
    room = denoiser.max_length - len(denoiser.prefix_ids) - len(denoiser.suffix_ids)
    if context_tokens is not None and context_tokens < 0:
        raise InfillError(f"context budget must be >= 0, got {context_tokens}")
    cap = max(room, 1) * CHARS_PER_TOKEN_CAP
    for h in holes:
        if h.length.tokens > room - 2 * MIN_SIDE_CONTEXT:
            raise InfillError(
                f"hole {h.start}:{h.end} asks for {h.length.tokens} tokens, but the model's "
                f"window of {denoiser.max_length} tokens leaves room for at most "
                f"{max(room - 2 * MIN_SIDE_CONTEXT, 0)}"
            )

    groups = _groups(text, holes, tok, room, cap, heals)
    canvases = []
    for gi, group in enumerate(groups):
        first, last = group[0][0], group[-1][0]
        left_edge = groups[gi - 1][-1][0].end if gi else 0
        right_edge = groups[gi + 1][0][0].start if gi + 1 < len(groups) else len(text)
        used = sum(_positions(h, heals) + (len(t.ids) if t else 0) for h, t in group)
        spare = room - used
        if context_tokens is not None:
            spare = min(spare, context_tokens)
        before = _tokenize(tok, text, left_edge, healed_end(text, left_edge, first.start),
                           keep="end", cap=cap)
        if heals:
            before = _heal_last_token(before)
        after = _tokenize(tok, text, last.end, right_edge, keep="start", cap=cap)
        n_before, n_after = _split(spare, len(before.ids), len(after.ids))
        if context_tokens is not None:
            n_before = _line_anchored(text, before, n_before)

        ids = list(denoiser.prefix_ids)
        ids += before.ids[len(before.ids) - n_before :]
        win_start = before.offsets[-n_before][0] if n_before else before.end
        runs = []
        context_end = before.end
        for h, between in group:
            seg_start = runs[-1].hole.end if runs else left_edge
            heal = text[min(context_end, healed_end(text, seg_start, h.start)) : h.start]
            if between is not None:
                context_end = between.end
            size = _positions(h, heals) if heal else h.length.tokens
            runs.append(MaskRun(h, range(len(ids), len(ids) + size), heal))
            ids += [denoiser.mask_id] * size
            if between is not None:
                ids += between.ids
        ids += after.ids[:n_after]
        win_end = after.offsets[n_after - 1][1] if n_after else last.end
        ids += list(denoiser.suffix_ids)
        canvases.append(Canvas(ids, runs, (win_start, win_end)))
    return canvases


def _groups(text: str, holes: Sequence[Hole], tok, room: int, cap: int, heals: bool
            ) -> list[list[tuple[Hole, _Tokens | None]]]:
    """Neighbouring holes grouped onto one canvas while their masks and the text between
    them fit; each entry is a hole and the tokens between it and the next of its group."""
    groups: list[list[tuple[Hole, _Tokens | None]]] = []
    for h in holes:
        if groups:
            last = groups[-1][-1][0]
            between = _tokenize(tok, text, last.end, healed_end(text, last.end, h.start),
                                keep="start", cap=cap)
            if heals and not between.clipped:
                between = _heal_last_token(between)
            used = sum(g.length.tokens + (len(t.ids) if t else 0) for g, t in groups[-1])
            if (
                not between.clipped
                and used + len(between.ids) + h.length.tokens + 2 * MIN_SIDE_CONTEXT <= room
            ):
                groups[-1][-1] = (last, between)
                groups[-1].append((h, None))
                continue
        groups.append([(h, None)])

    return groups


def healed_end(text: str, start: int, end: int) -> int:
    """Where the context before a hole stops: before the spaces or tabs that end a line
    with code on it (``return |``). BPE tokenizers glue a space to the word after it, so a
    context ending in a bare space token is one the model never saw in training; the fill
    brings its own space and the engine drops it again if the document has one."""
    cut = end
    while cut > start and text[cut - 1] in " \t":
        cut -= 1
    if cut == end or cut == start or text[cut - 1] == "\n":
        return end  # no trailing blanks, or only indentation: keep the context as it is
    return cut


def _line_anchored(text: str, before: _Tokens, n_before: int) -> int:
    """``n_before`` grown back to the first token of its line (the token after one that
    holds a line break), at most ``LINE_ANCHOR_SLACK`` tokens more."""
    if n_before == 0:
        return 0  # no context asked for
    start = len(before.ids) - n_before
    for i in range(start, max(start - LINE_ANCHOR_SLACK, 0) - 1, -1):
        if i == 0 or "\n" in text[before.offsets[i - 1][0]:before.offsets[i - 1][1]]:
            return len(before.ids) - i
    return n_before


def _split(spare: int, have_before: int, have_after: int) -> tuple[int, int]:
    """Share ``spare`` context tokens between prefix and suffix, centred on the holes."""
    spare = max(spare, 0)
    n_before = min(have_before, spare // 2)
    n_after = min(have_after, spare - n_before)
    n_before = min(have_before, spare - n_after)
    return n_before, n_after
