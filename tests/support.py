"""Test doubles that speak the real interfaces: a denoiser whose wishes are scripted."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from infill.models.embedded.tiny import BOS_ID, END_ID, MASK_ID, build_tokenizer

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
    device = "cpu"
    dtype = torch.float32

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


class TextRulesLM:
    """A causal language model for ``infill.drafts.Drafter`` whose next-token distribution
    is written as rules on the text so far: ``rules[ending] = {token text: probability}``
    for the longest ``ending`` the text ends with; every other token shares what is left.
    ``passes`` counts ``extend`` calls; ``contexts`` the longest history of each call."""

    def __init__(self, rules: dict[str, dict[str, float]], tokenizer=None) -> None:
        self.tokenizer = tokenizer or tiny_tokenizer()
        self.vocab = len(self.tokenizer)
        self.rules = {end: {self._one(t): p for t, p in dist.items()}
                      for end, dist in rules.items()}
        self.passes = 0

    def _one(self, text: str) -> int:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1, f"{text!r} is not one token of this tokenizer"
        return ids[0]

    def _next(self, history: list[int]) -> torch.Tensor:
        text = self.tokenizer.decode(history)
        endings = [e for e in self.rules if text.endswith(e)]
        dist = self.rules[max(endings, key=len)] if endings else {}
        rest = max(1e-6, 1.0 - sum(dist.values())) / self.vocab
        probs = torch.full((self.vocab,), rest)
        for token, p in dist.items():
            probs[token] = p
        return probs.log()

    def extend(self, ids: torch.Tensor, past=None):
        self.passes += 1
        past = past or RowsPast()
        rows = past.rows if past.rows else [[] for _ in range(ids.shape[0])]
        rows = rows * ids.shape[0] if len(rows) == 1 else rows
        grown, out = [], []
        for row, new in zip(rows, ids.tolist(), strict=True):
            history = list(past.shared_rows) + list(row)
            logits = []
            for t in new:
                history.append(t)
                logits.append(self._next(history))
            grown.append(list(row) + new)
            out.append(torch.stack(logits))
        return torch.stack(out), RowsPast(grown, past.shared_rows)


class RowsPast:
    """The ``PastKV`` of ``TextRulesLM``: each row's tokens (and a shared context's)."""

    def __init__(self, rows=(), shared_rows=()) -> None:
        self.rows, self.shared_rows = [list(r) for r in rows], list(shared_rows)

    @property
    def length(self) -> int:
        return len(self.shared_rows) + (len(self.rows[0]) if self.rows else 0)

    def branch(self) -> RowsPast:
        return RowsPast([], self.shared_rows + (self.rows[0] if self.rows else []))

    def cast(self, dtype) -> RowsPast:
        return self

    def select(self, rows: torch.Tensor) -> RowsPast:
        if not self.rows:
            return RowsPast([[] for _ in rows.tolist()], self.shared_rows)
        return RowsPast([self.rows[r] for r in rows.tolist()], self.shared_rows)

    def prefix(self, length: int) -> RowsPast:
        return RowsPast([self.rows[0][:length]])
