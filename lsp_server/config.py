"""The server's settings: defaults, CLI flags, ``initializationOptions`` and
``workspace/didChangeConfiguration``, validated key by key.

Keys (camelCase as editors write them; a ``{"lacuna": {...}}`` wrapper is accepted too):

========================  ==========================================================  ===========
key                       meaning                                                     default
========================  ==========================================================  ===========
model                     model directory (``None``: ``$LACUNA_MODEL`` / the default)  ``None``
device                    ``auto``, ``cpu``, ``cuda``, ``cuda:1`` ...                 ``auto``
quant                     ``none``, ``int8``, ``nf4``, ``torch-int8``, ``auto``        ``auto``
steps                     denoising steps per canvas (``None``: one per token)        ``None``
threshold                 confidence threshold (parallel decoding) instead of steps   ``None``
temperature               sampling temperature (0: greedy)                            ``0.0``
seed                      sampling seed                                               ``0``
blockLength               semi-autoregressive block length                            ``None``
marker                    marker text                                                 ``[MASK]``
budget                    token budget of an auto-length hole                         ``32``
inlineBudget              token budget of inline (ghost text) completion              ``16``
bodyBudget                token budget of "Write function body"                       ``128``
contextTokens             context tokens kept around the holes (``None``: all)        ``None``
syntaxConstraint          tree-sitter constraint on explicit fills (where a grammar)  ``True``
lengthPolicy              auto-length holes: ``auto`` (the model's own), ``absorb``,    ``auto``
                          ``grow``, ``best_of``, ``drafts``
cache                     reuse the context's keys/values between steps              ``False``
inlineThreshold           confidence threshold for ghost text (latency first)        ``0.9``
inlineContext             context tokens around the cursor for ghost text            ``256``
inlineLengthPolicy        ghost text's (``auto``: ``grow`` for a model without one)  ``auto``
inlineSyntaxConstraint    the tree-sitter constraint for ghost text too (6x slower)  ``False``
========================  ==========================================================  ===========
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from infill.holes import MAX_HOLE_TOKENS
from infill.types import POLICIES

try:  # the quant package names its modes; this list is the fallback
    from quant import CHOICES as QUANT_MODES
except ImportError:  # pragma: no cover - quant is part of the project
    QUANT_MODES = ("none", "int8", "nf4", "auto", "torch-int8")


@dataclass(frozen=True)
class Settings:
    model: str | None = None
    device: str = "auto"
    quant: str = "auto"
    steps: int | None = None
    threshold: float | None = None
    temperature: float = 0.0
    seed: int = 0
    block_length: int | None = None
    marker: str = "[MASK]"
    budget: int = 32
    inline_budget: int = 16
    body_budget: int = 128
    context_tokens: int | None = None
    syntax_constraint: bool = True
    length_policy: str = "auto"
    cache: bool = False
    #: Inline completion is latency-first: parallel decoding, cached context, small window.
    inline_threshold: float | None = 0.9
    inline_context: int | None = 256
    inline_length_policy: str = "auto"
    #: Off: remasking rounds cost full passes, 8.1 s against 1.3 s median (benchmarks.md).
    inline_syntax_constraint: bool = False

    def for_ghost_text(self) -> Settings:
        """These settings as ghost text uses them: the inline preset in place of the values
        explicit fills use (latency first: threshold decoding on a cached context, a smaller
        window, a hole that grows only as needed, no syntax remasking unless asked for,
        because each remask round costs a full pass: 6x the median latency)."""
        return replace(self, threshold=self.inline_threshold, cache=True,
                       context_tokens=self.inline_context,
                       length_policy=self.inline_length_policy,
                       syntax_constraint=self.inline_syntax_constraint)

    def model_key(self) -> tuple[str | None, str, str]:
        """What decides which loaded model serves a request: change it and it reloads."""
        return (self.model, self.device, self.quant)


_CAMEL = {
    "blockLength": "block_length",
    "inlineBudget": "inline_budget",
    "bodyBudget": "body_budget",
    "contextTokens": "context_tokens",
    "syntaxConstraint": "syntax_constraint",
    "lengthPolicy": "length_policy",
    "inlineThreshold": "inline_threshold",
    "inlineContext": "inline_context",
    "inlineLengthPolicy": "inline_length_policy",
    "inlineSyntaxConstraint": "inline_syntax_constraint",
}
#: Accepted synonyms (CLI flags and snake_case spellings).
_ALIASES = {f.name: f.name for f in fields(Settings)} | _CAMEL | {
    "modelDir": "model",
    "model_dir": "model",
    "quantization": "quant",
    "constrain": "syntax_constraint",
}


def _int(name: str, lo: int, hi: int | None = None, optional: bool = False):
    def check(v: Any) -> int | None:
        if v is None and optional:
            return None
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"{name} must be an integer, got {v!r}")
        if v < lo or (hi is not None and v > hi):
            bound = f"from {lo} to {hi}" if hi is not None else f"at least {lo}"
            raise ValueError(f"{name} must be {bound}, got {v}")
        return v

    return check


def _float(name: str, lo: float, hi: float, optional: bool = False, open_lo: bool = False):
    def check(v: Any) -> float | None:
        if v is None and optional:
            return None
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueError(f"{name} must be a number, got {v!r}")
        if v > hi or v < lo or (open_lo and v == lo):
            raise ValueError(f"{name} must be in {'(' if open_lo else '['}{lo}, {hi}], got {v}")
        return float(v)

    return check


def _str(name: str, optional: bool = False, choices: tuple[str, ...] | None = None):
    def check(v: Any) -> str | None:
        if v is None and optional:
            return None
        if not isinstance(v, str) or not v:
            raise ValueError(f"{name} must be a non-empty string, got {v!r}")
        if choices is not None and v.lower() not in choices:
            raise ValueError(f"{name} must be one of {', '.join(choices)}, got {v!r}")
        return v.lower() if choices is not None else v

    return check


def _bool(name: str):
    def check(v: Any) -> bool:
        if not isinstance(v, bool):
            raise ValueError(f"{name} must be true or false, got {v!r}")
        return v

    return check


_CHECKS = {
    "model": _str("model", optional=True),
    "device": _str("device"),
    "quant": _str("quant", choices=QUANT_MODES),
    "steps": _int("steps", 1, optional=True),
    "threshold": _float("threshold", 0.0, 1.0, optional=True, open_lo=True),
    "temperature": _float("temperature", 0.0, 100.0),
    "seed": _int("seed", 0),
    "block_length": _int("blockLength", 1, optional=True),
    "marker": _str("marker"),
    "budget": _int("budget", 1, MAX_HOLE_TOKENS),
    "inline_budget": _int("inlineBudget", 1, MAX_HOLE_TOKENS),
    "body_budget": _int("bodyBudget", 1, MAX_HOLE_TOKENS),
    "context_tokens": _int("contextTokens", 0, optional=True),
    "syntax_constraint": _bool("syntaxConstraint"),
    "length_policy": _str("lengthPolicy", choices=POLICIES),
    "cache": _bool("cache"),
    "inline_threshold": _float("inlineThreshold", 0.0, 1.0, optional=True, open_lo=True),
    "inline_context": _int("inlineContext", 0, optional=True),
    "inline_length_policy": _str("inlineLengthPolicy", choices=POLICIES),
    "inline_syntax_constraint": _bool("inlineSyntaxConstraint"),
}


def unwrap(raw: Any) -> Mapping[str, Any]:
    """The settings mapping inside what a client sent (``{"lacuna": {...}}`` or flat)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValueError(f"settings must be an object, got {type(raw).__name__}")
    inner = raw.get("lacuna")
    if isinstance(inner, Mapping):
        return inner
    return raw


def merge(base: Settings, raw: Any) -> tuple[Settings, list[str]]:
    """``base`` updated by every valid key of ``raw``, and one message per rejected key.

    Unknown keys are reported, never silently ignored: a typo in an editor's settings
    should be visible. A rejected key keeps its previous value.
    """
    try:
        mapping = unwrap(raw)
    except ValueError as e:
        return base, [str(e)]
    changes: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in mapping.items():
        name = _ALIASES.get(key)
        if name is None:
            problems.append(f"unknown setting {key!r}")
            continue
        try:
            changes[name] = _CHECKS[name](value)
        except ValueError as e:
            problems.append(str(e))
    return replace(base, **changes), problems
