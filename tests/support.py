"""Test doubles that speak the real interfaces: a denoiser whose wishes are scripted."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from infill.models.tiny import BOS_ID, END_ID, MASK_ID, build_tokenizer

_TOKENIZER = None


def tiny_tokenizer():
    """The tiny model's real byte-level BPE tokenizer (built once per test session)."""
    global _TOKENIZER
    if _TOKENIZER is None:
        _TOKENIZER = build_tokenizer()
    return _TOKENIZER


class ScriptedDenoiser:
    """A Denoiser that wants given tokens at given hole positions.

    ``wishes[k][i]`` lists, best first, the tokens the k-th hole's i-th position wants; each
    entry is ``token`` or ``(token, logit)``. Hole runs are found on the first call (the
    masked positions, grouped where consecutive), so tests need not know the planner's layout.
    Everything else scores a flat -10. ``calls`` counts forward passes.
    """

    family = "scripted"

    def __init__(self, wishes: Sequence[Sequence[Sequence]], *, tokenizer=None,
                 max_length: int = 512, fallback: int | None = None) -> None:
        self.tokenizer = tokenizer or tiny_tokenizer()
        self.mask_id = MASK_ID
        self.end_ids = frozenset({END_ID})
        self.prefix_ids = (BOS_ID,)
        self.suffix_ids = ()
        self.max_length = max_length
        self.vocab = len(self.tokenizer)
        self.wishes = wishes
        self.fallback = END_ID if fallback is None else fallback
        self.runs: list[list[int]] | None = None
        self.calls = 0

    def _find_runs(self, ids: list[int]) -> list[list[int]]:
        runs: list[list[int]] = []
        for p, t in enumerate(ids):
            if t == self.mask_id or t in self.end_ids:
                if runs and runs[-1][-1] == p - 1:
                    runs[-1].append(p)
                else:
                    runs.append([p])
        return runs

    def wish_at(self, position: int) -> list[tuple[int, float]]:
        assert self.runs is not None
        for k, run in enumerate(self.runs):
            if position in run:
                i = run.index(position)
                hole = self.wishes[k] if k < len(self.wishes) else []
                entries = hole[i] if i < len(hole) else [self.fallback]
                out = []
                for rank, e in enumerate(entries):
                    tok, logit = e if isinstance(e, tuple) else (e, 10.0 - rank)
                    out.append((tok, logit))
                return out
        return []

    def logits(self, ids: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        self.calls += 1
        row = ids[0].tolist()
        if self.runs is None:
            self.runs = self._find_runs(row)
        rows = positions.tolist() if positions is not None else list(range(len(row)))
        out = torch.full((ids.shape[0], len(rows), self.vocab), -10.0)
        for r, p in enumerate(rows):
            for tok, logit in self.wish_at(p):
                out[:, r, tok] = logit
        return out


def ids_of(text: str) -> list[int]:
    return tiny_tokenizer()(text, add_special_tokens=False)["input_ids"]
