"""Tree-sitter grammars, queries and the syntax constraint for the sampler.

``language_for(id)`` maps an LSP language id to a grammar; ``syntax_constraint(id)`` gives
the constraint the engine runs between denoising steps (None when there is no grammar);
``grammars.functions`` finds empty function bodies and writes them.
"""

from __future__ import annotations

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


__all__ = [
    "grammar_name",
    "language_for",
    "parser_for",
    "query_for",
    "supported",
    "syntax_constraint",
]
