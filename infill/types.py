"""The engine's vocabulary: holes, requests, results and the two plug-in interfaces.

Everything here is plain data or a Protocol, so the LSP server, the CLI, the grammar
constraint and the model families can all speak it without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch


class InfillError(ValueError):
    """A request the engine cannot serve; the message is one line meant for the user."""


class Cancelled(Exception):
    """Raised inside the sampler when the caller's cancel check says stop."""


@dataclass(frozen=True)
class Length:
    """How many tokens a hole gets.

    ``exact``: exactly ``tokens`` tokens, end-of-text forbidden inside the hole.
    ``auto``: at most ``tokens`` tokens; the model fills the excess with its end/padding
    token and the engine trims it, so the model decides the length within the budget.
    """

    mode: Literal["exact", "auto"]
    tokens: int

    def __post_init__(self) -> None:
        if self.mode not in ("exact", "auto"):
            raise InfillError(f"unknown length mode {self.mode!r} (use 'exact' or 'auto')")
        if not isinstance(self.tokens, int) or self.tokens < 1:
            raise InfillError(f"a hole needs at least 1 token, got {self.tokens!r}")

    @classmethod
    def exact(cls, tokens: int) -> Length:
        return cls("exact", tokens)

    @classmethod
    def auto(cls, budget: int = 32) -> Length:
        return cls("auto", budget)


@dataclass(frozen=True)
class Hole:
    """A character range ``[start, end)`` of the document to replace; ``start == end`` inserts."""

    start: int
    end: int
    length: Length = field(default_factory=Length.auto)

    @property
    def is_insertion(self) -> bool:
        return self.start == self.end


@dataclass(frozen=True)
class SamplingOptions:
    """Knobs of the reverse process.

    ``steps``: denoising steps per canvas (``None``: one per masked token, LLaDA's default).
    ``block_length``: semi-autoregressive blocks of that many masked tokens, filled left to
    right (``None``: all holes denoised in parallel as one block).
    ``threshold``: commit every token whose confidence passes it (at least one per step)
    instead of following the step schedule (Fast-dLLM parallel decoding).
    """

    steps: int | None = None
    block_length: int | None = None
    temperature: float = 0.0
    top_k: int | None = None
    top_p: float | None = None
    seed: int = 0
    remasking: Literal["low_confidence", "random"] = "low_confidence"
    threshold: float | None = None
    max_remask_rounds: int = 4
    #: Reuse the keys and values of the context between steps (families that offer
    #: ``prefill``/``cached_logits``); refreshed at each block and every ``refresh_every``
    #: steps (0: only at block starts). Approximate: the context does not see new commits.
    cache: bool = False
    refresh_every: int = 0

    def __post_init__(self) -> None:
        if self.steps is not None and self.steps < 1:
            raise InfillError(f"steps must be at least 1, got {self.steps}")
        if self.block_length is not None and self.block_length < 1:
            raise InfillError(f"block length must be at least 1, got {self.block_length}")
        if self.temperature < 0:
            raise InfillError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k is not None and self.top_k < 1:
            raise InfillError(f"top-k must be at least 1, got {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise InfillError(f"top-p must be in (0, 1], got {self.top_p}")
        if self.threshold is not None and not 0 < self.threshold <= 1:
            raise InfillError(f"threshold must be in (0, 1], got {self.threshold}")
        if self.refresh_every < 0:
            raise InfillError(f"refresh_every must be >= 0, got {self.refresh_every}")
        if self.remasking not in ("low_confidence", "random"):
            raise InfillError(f"unknown remasking {self.remasking!r}")


LengthPolicy = Literal["auto", "absorb", "grow", "best_of", "drafts", "cal", "expand"]
#: ``auto``: the model's own policy (``Denoiser.length_policy``, else ``absorb``);
#: ``expand`` needs a model trained with ``<|expand|>`` (``Denoiser.expand_id``, DreamOn).
POLICIES = ("auto", "absorb", "grow", "best_of", "drafts", "cal", "expand")


@dataclass(frozen=True)
class LengthOptions:
    """How auto-length holes find their length (see ``infill.length``)."""

    policy: LengthPolicy = "auto"
    #: What ``auto`` means for a model with no policy of its own (ghost text: ``grow``).
    fallback: LengthPolicy = "absorb"
    #: grow and expand: masks a hole starts with; grow: masks opened at a time, and the
    #: end-token probability after the masks below which the hole grows.
    initial: int = 8
    step: int = 8
    grow_below: float = 0.5
    #: best_of: candidate lengths (clipped to each hole's budget) and how to score them.
    candidates: tuple[int, ...] = (4, 8, 16, 32)
    scorer: Literal["confidence", "likelihood"] = "confidence"
    #: cal: lengths in a row that may bring nothing better before a search direction
    #: stops (the paper's 4), and probe rows sent through the network as one batch.
    patience: int = 4
    probe_batch: int = 4

    def __post_init__(self) -> None:
        for policy in (self.policy, self.fallback):
            if policy not in POLICIES:
                raise InfillError(
                    f"unknown length policy {policy!r} (use {', '.join(POLICIES)})"
                )
        if self.initial < 1 or self.step < 1:
            raise InfillError("grow needs initial and step of at least 1 token")
        if not self.candidates or min(self.candidates) < 1:
            raise InfillError("best_of needs candidate lengths of at least 1 token")
        if self.patience < 1 or self.probe_batch < 1:
            raise InfillError("cal needs a patience and a probe batch of at least 1")
        if self.scorer not in ("confidence", "likelihood"):
            raise InfillError(f"unknown length scorer {self.scorer!r}")


@dataclass(frozen=True)
class InfillRequest:
    text: str
    holes: Sequence[Hole]
    language: str = "plaintext"
    options: SamplingOptions = field(default_factory=SamplingOptions)
    constrain: bool = False
    #: Context tokens kept around the holes (prefix + suffix); ``None``: as much as fits.
    context_tokens: int | None = None
    length: LengthOptions = field(default_factory=LengthOptions)
    #: Shape auto-length fills to their line context (``infill.lines``).
    line_aware: bool = True


@dataclass(frozen=True)
class HoleFill:
    """What one hole became."""

    hole: Hole
    text: str
    token_ids: list[int]
    confidence: list[float]
    #: Tokens the length policy trimmed away (end/padding absorbing an auto budget).
    trimmed: int = 0


@dataclass(frozen=True)
class InfillResult:
    fills: list[HoleFill]
    steps: int
    forward_passes: int
    #: ``None`` when no constraint ran; else whether the final text satisfied it.
    constraint_satisfied: bool | None = None
    remasked: int = 0
    canvases: int = 1
    seconds: float = 0.0
    #: Per canvas: the length policy used, its budgets, and what it chose.
    length: list[dict[str, object]] = field(default_factory=list)

    def stats(self) -> dict[str, object]:
        return {
            "steps": self.steps,
            "forwardPasses": self.forward_passes,
            "canvases": self.canvases,
            "remasked": self.remasked,
            "constraintSatisfied": self.constraint_satisfied,
            "seconds": round(self.seconds, 4),
            "tokens": [len(f.token_ids) for f in self.fills],
            "trimmed": [f.trimmed for f in self.fills],
            "length": self.length,
        }


@runtime_checkable
class Denoiser(Protocol):
    """The one interface every model family implements.

    ``logits(ids)`` returns ``[batch, length, vocab]`` aligned so that row ``i`` scores the
    token at position ``i`` (families whose logits are shifted by one realign internally).
    With ``positions`` (1-D indices) only those rows are returned: ``[batch, len(positions),
    vocab]``, which lets a family skip the output head elsewhere.

    Optional, read in one place each: ``length_policy`` (what ``auto`` means for this
    model), ``expand_id`` (a family trained to commit ``<|expand|>``, DreamOn: the canvas
    may grow and shrink, ``infill.expand.expand_id_of``), ``block_ids(x, positions)`` (a
    block-diffusion family, SDAR, LLaDA 2.x: the model block each canvas position is read
    in; the sampler decodes those blocks left to right when the options name no block
    length), ``heals`` (token healing, ``infill.plan.heals_holes``), ``drafter`` (a causal
    view that drafts fills, the embedded default: ``infill.drafts.drafter_of``),
    ``plan_canvas`` (a family that reads the layout before sampling, the embedded
    default's two views).
    """

    family: str
    mask_id: int
    #: Token ids that mean "nothing here"; they absorb the unused budget of auto holes.
    end_ids: frozenset[int]
    max_length: int
    tokenizer: object
    #: Tokens that open every canvas (BOS); shifted families need at least one.
    prefix_ids: tuple[int, ...]
    #: Tokens that close every canvas (EOS), if the family was trained with them.
    suffix_ids: tuple[int, ...]
    #: Where the network runs and in what dtype: the sampler builds its tensors there.
    device: torch.device | str
    dtype: torch.dtype

    def logits(
        self, ids: torch.Tensor, positions: torch.Tensor | None = None
    ) -> torch.Tensor: ...


@runtime_checkable
class CachedDenoiser(Denoiser, Protocol):
    """A denoiser that can keep the context's keys and values between steps (the
    sampler's ``cache`` option): ``prefill`` runs a full pass and returns the cache with
    the logits of ``positions``; ``cached_logits`` recomputes only the ``active`` rows."""

    def prefill(self, ids: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, Any]:
        ...

    def cached_logits(self, ids: torch.Tensor, positions: torch.Tensor, cache: Any,
                      active: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class Remask:
    """A canvas position the constraint rejects, and the token to forbid there."""

    position: int
    forbid: int | None = None


@dataclass
class HoleView:
    """One hole as the sampler currently holds it."""

    hole: Hole
    #: Canvas positions of this hole's mask run, in order.
    positions: list[int]
    #: Current token at each position; ``mask_id`` where still masked.
    tokens: list[int]
    #: Text the hole's first tokens spell that the document already has before the hole
    #: (token healing, ``infill.heal``): not part of the fill.
    heal: str = ""


@dataclass
class CanvasView:
    """What a constraint sees each review: the document and the holes as they stand."""

    text: str
    language: str
    holes: list[HoleView]
    mask_id: int
    end_ids: frozenset[int]
    tokenizer: object
    #: Decodes a list of token ids to text (end tokens already removed by the caller).
    decode: Callable[[list[int]], str]


class Constraint(Protocol):
    """Reviews the canvas between steps and names committed tokens to remask."""

    def review(self, canvas: CanvasView) -> list[Remask]: ...


@dataclass(frozen=True)
class StepInfo:
    """Sent to the progress callback after each denoising step."""

    step: int
    #: Steps expected in total (may grow when a constraint remasks).
    total: int
    masks_left: int
    committed: int
    #: Renders the current text of each hole (masked positions dropped); call it lazily.
    texts: Callable[[], list[str]]
