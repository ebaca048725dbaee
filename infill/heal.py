"""Token healing: the first tokens of a hole whose left context lost its last token.

The plan keeps the document's last token before a hole out of the context (``MaskRun.heal``)
and the fill must spell that text first: a context ending mid-token is a state the
tokenizer never produces (``"\\n"`` then four spaces is one token; ``" return"`` then a
space never occurs), so a model reading it writes nonsense. The hole's first tokens must
each continue the healed text (a token may begin with all that is left of it, or be a
piece of it); the engine then drops the healed text again, since the document already
has it, so nothing outside the hole changes.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import torch

_TEXTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_MASKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def vocabulary_texts(tokenizer) -> list[str]:
    """Each token id's text as the tokenizer decodes it alone (cached per tokenizer)."""
    try:
        return _TEXTS[tokenizer]
    except (KeyError, TypeError):
        pass
    texts = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    backend = getattr(tokenizer, "backend_tokenizer", None)
    decoder = getattr(backend, "decoder", None)
    if decoder is not None:  # byte-level pieces ("Ġx") back to text, one by one
        texts = [decoder.decode([t]) if t is not None else "" for t in texts]
    try:
        _TEXTS[tokenizer] = texts
    except TypeError:
        pass
    return texts


def _cached(tokenizer, key: tuple, build) -> torch.Tensor:
    """A vocabulary mask cached per tokenizer (a document's holes are planned again on
    every fill; each mask scans the whole vocabulary)."""
    try:
        masks = _MASKS.setdefault(tokenizer, {})
    except TypeError:
        return build()
    if key not in masks:
        if len(masks) >= 512:
            masks.clear()
        masks[key] = build()
    return masks[key]


def continuing(tokenizer, vocab_size: int, rest: str, special: frozenset[int]) -> torch.Tensor:
    """Boolean ``[vocab]``: tokens that begin with ``rest`` or are a piece of it (what may
    come next while a healed text is spelled)."""

    def build() -> torch.Tensor:
        texts = vocabulary_texts(tokenizer)[:vocab_size]
        hits = [i for i, t in enumerate(texts) if t and i not in special
                and (t.startswith(rest) or rest.startswith(t))]
        mask = torch.zeros(vocab_size, dtype=torch.bool)
        mask[hits] = True
        return mask

    return _cached(tokenizer, ("continuing", vocab_size, rest, special), build)


def beginning(tokenizer, vocab_size: int, following: str, end_ids: frozenset[int],
              special: frozenset[int] = frozenset()) -> torch.Tensor:
    """Boolean ``[vocab]``: text tokens that begin ``following`` (the text after a hole:
    the next token ending the hole); where the document ends (``""``), the end tokens.
    A run of spaces says nothing about where a hole ends (" " then a digit is how
    SmolLM2 writes numbers); a line break or a word does."""

    def build() -> torch.Tensor:
        mask = torch.zeros(vocab_size, dtype=torch.bool)
        if not following:
            mask[sorted(t for t in end_ids if t < vocab_size)] = True
            return mask
        skip = set(special) | set(getattr(tokenizer, "all_special_ids", []) or [])
        texts = vocabulary_texts(tokenizer)[:vocab_size]
        hits = [i for i, t in enumerate(texts) if t and i not in skip
                and (t.strip() or "\n" in t) and following.startswith(t)]
        mask[hits] = True
        return mask

    return _cached(tokenizer, ("beginning", vocab_size, following, end_ids, special), build)


def unhealed(fill: str, heal: str) -> str:
    """The fill without the healed text the document already has (``""`` when the fill
    stopped inside it)."""
    if fill.startswith(heal):
        return fill[len(heal):]
    if heal.startswith(fill):
        return ""
    return fill


@dataclass
class Healing:
    """Which tokens each healed hole's next position admits, given what it holds."""

    tokenizer: object
    vocab_size: int
    mask_id: int
    end_ids: frozenset[int]
    #: Tokens never admitted (special tokens).
    special: frozenset[int]
    #: Per healed run: its positions, its healed text, and whether it may end at once.
    runs: Sequence[tuple[Sequence[int], str, bool]]

    def continuing(self, rest: str) -> torch.Tensor:
        """Boolean ``[vocab]``: tokens that begin with ``rest`` or are a piece of it."""
        return continuing(self.tokenizer, self.vocab_size, rest, self.special)

    def admissible(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """For each run still spelling its healed text: its first masked position and the
        tokens it admits there (an auto hole's first position also admits its end)."""
        texts = vocabulary_texts(self.tokenizer)
        out: dict[int, torch.Tensor] = {}
        for positions, heal, may_end in self.runs:
            rest = heal
            for i, p in enumerate(positions):
                t = int(x[p])
                if t == self.mask_id:
                    mask = self.continuing(rest)
                    if may_end and i == 0:
                        mask = mask.clone()
                        mask[sorted(self.end_ids)] = True
                    out[p] = mask
                    break
                text = texts[t] if t < len(texts) and t not in self.end_ids else ""
                if not text or text.startswith(rest) or not rest.startswith(text):
                    break  # ended, healed, or (out of order) no longer healable
                rest = rest[len(text):]
        return out
