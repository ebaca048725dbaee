"""Tree-sitter grammars, queries and the syntax constraint for the sampler.

``language_for(id)`` maps an LSP language id to a grammar; ``syntax_constraint(id)`` gives
the constraint the engine runs between denoising steps (None when there is no grammar), and
``constraint_for(id, wanted)`` the one a request asked for (the CLI's and the server's
single lookup);
``grammars.functions`` finds empty function bodies and writes them.
"""

from __future__ import annotations

from typing import Any

from .registry import grammar_name, language_for, parser_for, query_for, supported


def syntax_constraint(language_id: str | None, every: int = 1):
    """The constraint for ``language_id`` (Markdown gets its structural checks too), or
    None when Lacuna has no grammar for it."""
    name = grammar_name(language_id)
    if name is None or language_for(name) is None:
        return None
    if name == "markdown":
        from .markdown import MarkdownConstraint

        return MarkdownConstraint(every=every)
    from .constraint import SyntaxConstraint

    return SyntaxConstraint(name, every=every)


def constraint_for(language_id: str | None, wanted: bool | str | None = True,
                   every: int = 1) -> tuple[Any, str]:
    """The constraint a request asked for, and a word for its stats: ``wanted`` False is
    off; True or None is on where a grammar exists; ``"require"`` raises ``LookupError``
    when none does, so that a user who asked for it by name learns it cannot run."""
    if wanted is False:
        return None, "off"
    constraint = syntax_constraint(language_id, every)
    if constraint is not None:
        return constraint, "on"
    state = f"unavailable: no grammar for language id {language_id!r}"
    if wanted == "require":
        raise LookupError(f"the syntax constraint was required but is {state}")
    return None, state


__all__ = [
    "constraint_for",
    "grammar_name",
    "language_for",
    "parser_for",
    "query_for",
    "supported",
    "syntax_constraint",
]
