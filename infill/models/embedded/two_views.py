"""Two views of one network: the embedded default's causal expert at each hole's frontier.

SmolLM2 knows code as an autoregressive model: run causally (its pretrained attention, no
adapter) from the text before a hole it knows what comes next. The diffusion view (the
adapter merged, attention bidirectional) sees the suffix too. ``TwoViewDenoiser`` is a
``Denoiser``; at a hole's frontier (the first masked position after committed text, with
no mask before it) it gives

    p(end) = 1 - (1 - p_diffusion(end)) (1 - p_suffix),   p(t) = (1 - p(end)) p_causal(t),

where ``p_suffix`` is the causal view's probability that its next token begins the text
after the hole (``plan_canvas`` tells it that text; never at a hole's first position) and
``p_causal`` leaves out the causal view's own end-of-document token. A masked row away
from the frontier has no opinion, so every sampler setting decodes each hole left to
right; a committed row is the diffusion view's. The causal view keeps the keys and values
of the last left context it read, so each step costs one incremental pass.
"""

from __future__ import annotations

import torch

from ...drafts import Drafter
from ...heal import beginning
from ..runtime.native import NativeDenoiser
from ..runtime.transformer import ContextCache, Transformer, forbid_untrained_rows


class CausalView:
    """A causal model over canvas text with a key/value cache of its last context."""

    def __init__(self, model: Transformer, tokens: int) -> None:
        self.model = model
        self.tokens = tokens
        self._cache = ContextCache(model)

    def next_logits(self, context: list[int]) -> torch.Tensor:
        """Logits ``[vocab]`` of the token after ``context`` (reusing the shared prefix
        of the last context read)."""
        return forbid_untrained_rows(self._cache.read(context)[1].float(), self.tokens)


class TwoViewDenoiser:
    """The diffusion view's ``Denoiser`` with the causal view at each hole's frontier."""

    #: The plan keeps each hole's last context token out (token healing, ``infill.heal``):
    #: the causal view needs a context the tokenizer could have produced.
    heals = True

    def __init__(self, diffusion: NativeDenoiser, causal: CausalView) -> None:
        self.diffusion = diffusion
        self.causal = causal
        for name in ("family", "mask_id", "end_ids", "max_length", "tokenizer", "prefix_ids",
                     "suffix_ids", "device", "dtype", "config", "model"):
            setattr(self, name, getattr(diffusion, name, None))
        self.tokens = getattr(diffusion, "tokens", None) or len(diffusion.tokenizer)
        self._end = torch.tensor(sorted(self.end_ids), dtype=torch.long)
        #: With a causal network, auto-length holes are filled by drafts (``infill.drafts``):
        #: measured better than this denoiser's frontier sampling (docs/benchmarks.md).
        network = getattr(causal, "model", None)
        special = frozenset(getattr(self.tokenizer, "all_special_ids", []) or [])
        self.drafter = (None if network is None else
                        Drafter(network, self.tokenizer, self.tokens, self.end_ids, special,
                                device=self.device or "cpu", stepper=_bf16_on_cpu(network)))
        self.length_policy = None if network is None else "drafts"
        self._firsts: set[int] = set()
        self._endings: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    # -- the Denoiser interface: the frontier rows combined, the others without opinion --
    def logits(self, ids: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        if positions is None:
            positions = torch.arange(ids.shape[1], device=ids.device)
        return self._rows(ids, positions, lambda at: self.diffusion.logits(ids, at))

    def prefill(self, ids: torch.Tensor, positions: torch.Tensor):
        cache = []

        def diffusion(at: torch.Tensor) -> torch.Tensor:
            logits, filled = self.diffusion.prefill(ids, at)
            cache.append(filled)
            return logits

        logits = self._rows(ids, positions, diffusion, always=True)
        return logits, cache[0]

    def cached_logits(self, ids: torch.Tensor, positions: torch.Tensor, cache,
                      active: torch.Tensor) -> torch.Tensor:
        # Only the rows read are recomputed (the frontiers): the diffusion view's other
        # keys and values come from the cache, as the sampler's cache mode allows.
        return self._rows(ids, positions, lambda at: self.diffusion.cached_logits(
            ids, at, cache, torch.unique(at)))

    def raw_logits(self, ids: torch.Tensor) -> torch.Tensor:
        return self.diffusion.raw_logits(ids)

    # -- the frontier --
    def frontier_context(self, row: list[int], p: int) -> list[int] | None:
        """The causal view's context for canvas position ``p`` of ``row``, or ``None`` when
        ``p`` is no frontier: it must be masked, follow a committed token, and have no
        mask before it. End tokens (a closed hole's padding) are not text and are left out;
        the canvas's opening tokens stay."""
        if row[p] != self.mask_id or p == 0 or row[p - 1] == self.mask_id:
            return None
        head = len(self.prefix_ids)
        before = row[head:p]
        if self.mask_id in before:
            return None
        return row[:head] + [t for t in before if t not in self.end_ids]

    def plan_canvas(self, canvas, text: str) -> None:
        """Told by the engine before a canvas is sampled: where each hole starts and the
        text that would follow it if it ended there (the document's text after the hole;
        after a line break too when the hole ends at a line start, since a fill of whole
        lines ends with one)."""
        self._firsts = {run.positions[0] for run in canvas.runs if len(run.positions)}
        self._endings = {}
        for run in canvas.runs:
            after = text[run.hole.end : run.hole.end + 64]
            direct = self._starting(after)
            # Before a line start the fill must end with a line break: until it does,
            # the hole ends only on a token that brings the break.
            broken = (self._starting("\n" + after)
                      if run.hole.end > 0 and text[run.hole.end - 1] == "\n" and after
                      else direct)
            self._endings.update({p: (direct, broken) for p in run.positions})

    def _starting(self, following: str) -> torch.Tensor:
        """Boolean ``[vocab]``: text tokens that begin ``following`` (``infill.heal``)."""
        return beginning(self.tokenizer, self.tokens, following, self.end_ids)

    def p_suffix_next(self, causal: torch.Tensor, p: int, context: list[int]) -> float:
        """The causal view's probability, at frontier ``p``, that the next token begins the
        text after the hole (that the hole is complete); 0 at a hole's first position (an
        empty fill is the diffusion view's call) and where no layout was planned."""
        if p in self._firsts or p not in self._endings:
            return 0.0
        direct, broken = self._endings[p]
        at_line_start = self.tokenizer.decode(context[-1:]).endswith("\n")
        ending = direct if at_line_start else broken
        return float(torch.softmax(causal.float(), dim=-1)[: len(ending)][ending].sum())

    def _rows(self, ids: torch.Tensor, positions: torch.Tensor, diffusion,
              always: bool = False) -> torch.Tensor:
        """``[batch, len(positions), vocab]``: at each frontier the two views combined; a
        masked row elsewhere has no opinion (uniform over text, no end: measured, the
        adapter's commits away from the frontier broke the fills they ran into); a
        committed row is the diffusion view's. ``diffusion(at)`` runs that view on the
        rows ``at`` (``always``: even when no row needs it, as a prefill must)."""
        rows = ids.tolist()
        where = positions.tolist()
        out = torch.zeros(ids.shape[0], len(where), self.tokens, device=ids.device)
        out[..., sorted(self.end_ids)] = -torch.inf
        frontiers = [(b, r, self.frontier_context(row, p)) for b, row in enumerate(rows)
                     for r, p in enumerate(where)]
        frontiers = [(b, r, c) for b, r, c in frontiers if c is not None]
        committed = [(b, r) for b, row in enumerate(rows) for r, p in enumerate(where)
                     if row[p] != self.mask_id]
        need = sorted({r for b, r, _ in frontiers} | {r for _, r in committed})
        if not need and not always:
            return out
        view = diffusion(positions[need] if need else positions[:1])
        index = {r: i for i, r in enumerate(need)}
        for b, r in committed:
            out[b, r] = view[b, index[r], : self.tokens]
        end = self._end.to(out.device)
        for b, r, context in frontiers:
            causal = self.causal.next_logits(context).to(out.device)
            p_suffix = self.p_suffix_next(causal, where[r], context)
            out[b, r] = combine_at_frontier(view[b, index[r], : self.tokens], causal, end,
                                            p_suffix)
        return out


def _bf16_on_cpu(network) -> Transformer | None:
    """A bf16 copy of an fp32 network on the CPU, for the drafter's beam steps."""
    weight = getattr(getattr(network, "embed_tokens", None), "weight", None)
    if weight is None or weight.device.type != "cpu" or weight.dtype != torch.float32:
        return None
    import copy

    return copy.deepcopy(network).to(torch.bfloat16)


def combine_at_frontier(diffusion: torch.Tensor, causal: torch.Tensor, end: torch.Tensor,
                        p_suffix: float) -> torch.Tensor:
    """Log-probabilities ``[vocab]`` at a frontier: the hole ends with either view's end
    probability (the diffusion view's end tokens; ``p_suffix``, the causal view's
    probability that the text after the hole comes next); the causal view's text tokens
    (its own end-of-document token left out) share the rest. The end mass goes to the
    first end token."""
    lp_diffusion = torch.log_softmax(diffusion.float(), dim=-1)
    p_diffusion_end = lp_diffusion[end].exp().sum()
    p_end = (1 - (1 - p_diffusion_end) * (1 - p_suffix)).clamp(1e-9, 1 - 1e-6)
    text = causal.float().clone()
    text[end] = -torch.inf
    out = torch.log_softmax(text, dim=-1) + torch.log1p(-p_end)
    out[end] = -torch.inf
    out[end[0]] = torch.log(p_end)
    return out
