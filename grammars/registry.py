"""Which tree-sitter grammar serves which LSP language id.

Grammars come from the per-language wheels on PyPI (``tree-sitter-python`` and friends;
docs/grammars.md says why not a language pack). Each wheel is imported only when its
language is first asked for, so a missing or broken wheel costs only its own language.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tree_sitter import Language, Parser, Query

QUERY_DIR = Path(__file__).parent / "queries"


@dataclass(frozen=True)
class Grammar:
    """One grammar: the canonical name (its query folder), wheel module and entry point."""

    name: str
    module: str
    entry: str = "language"


GRAMMARS: dict[str, Grammar] = {
    g.name: g
    for g in [
        Grammar("python", "tree_sitter_python"),
        Grammar("javascript", "tree_sitter_javascript"),
        Grammar("typescript", "tree_sitter_typescript", "language_typescript"),
        Grammar("tsx", "tree_sitter_typescript", "language_tsx"),
        Grammar("rust", "tree_sitter_rust"),
        Grammar("go", "tree_sitter_go"),
        Grammar("java", "tree_sitter_java"),
        Grammar("c", "tree_sitter_c"),
        Grammar("cpp", "tree_sitter_cpp"),
        Grammar("markdown", "tree_sitter_markdown"),
    ]
}

#: LSP language ids (and common short names / file extensions) to grammar names.
ALIASES: dict[str, str] = {
    "py": "python",
    "python3": "python",
    "js": "javascript",
    "jsx": "javascript",
    "javascriptreact": "javascript",
    "mjs": "javascript",
    "cjs": "javascript",
    "ts": "typescript",
    "mts": "typescript",
    "cts": "typescript",
    "typescriptreact": "tsx",
    "rs": "rust",
    "golang": "go",
    "h": "c",
    "c++": "cpp",
    "cc": "cpp",
    "cxx": "cpp",
    "hpp": "cpp",
    "md": "markdown",
}


def grammar_name(language_id: str | None) -> str | None:
    """The grammar name for an LSP language id or alias, or None when Lacuna has none."""
    if not language_id:
        return None
    key = language_id.strip().lower()
    key = ALIASES.get(key, key)
    return key if key in GRAMMARS else None


@cache
def _load(name: str) -> Language | None:
    g = GRAMMARS[name]
    try:
        module = importlib.import_module(g.module)
        return Language(getattr(module, g.entry)())
    except (ImportError, AttributeError, ValueError):
        return None


def language_for(language_id: str | None) -> Language | None:
    """The tree-sitter Language for ``language_id``; None if unknown or its wheel is missing."""
    name = grammar_name(language_id)
    return _load(name) if name else None


def parser_for(language_id: str | None) -> Parser | None:
    """A fresh parser (parsers keep state, so each user gets its own)."""
    lang = language_for(language_id)
    return Parser(lang) if lang is not None else None


#: Grammars that extend another and read its queries unless they have their own file
#: (tree-sitter's ``; inherits:`` convention): TypeScript's node names are JavaScript's.
INHERITS = {"typescript": "javascript", "tsx": "javascript"}


@cache
def _query(name: str, kind: str) -> Query | None:
    lang = _load(name)
    path = QUERY_DIR / name / f"{kind}.scm"
    if not path.is_file() and name in INHERITS:
        path = QUERY_DIR / INHERITS[name] / f"{kind}.scm"
    if lang is None or not path.is_file():
        return None
    return Query(lang, path.read_text(encoding="utf-8"))


def query_for(language_id: str | None, kind: str) -> Query | None:
    """The compiled ``queries/<grammar>/<kind>.scm`` (``functions``, ``docstrings``,
    ``sections``), or None when the language or that query does not exist."""
    name = grammar_name(language_id)
    return _query(name, kind) if name else None


def supported() -> list[str]:
    """Grammar names whose wheel is installed and loads."""
    return [n for n in GRAMMARS if _load(n) is not None]
