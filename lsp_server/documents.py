"""Open documents: one URI spelling for every lookup, and a generation per open document.

pygls stores a document under its percent-decoded URI (``file:///tmp/my file.txt``), while
clients send it encoded (``my%20file.txt``, VS Code's ``file:///c%3A/...``): :func:`key` is
the one normalisation, used for the workspace and for the server's own tables. A version
number alone cannot tell an in-flight fill that its text went away (a didChange may reuse
a version; didClose + didOpen starts again at 1), so every open, change and close takes a
fresh :class:`Generations` number and a fill is stale when its number is no longer current.
"""

from __future__ import annotations

import itertools
from typing import Any
from urllib.parse import unquote

from pygls.workspace import TextDocument, Workspace


def key(uri: str) -> str:
    """The one spelling of ``uri`` every lookup uses (pygls' own: percent-decoded)."""
    return unquote(uri)


def find(workspace: Workspace, uri: Any) -> TextDocument | None:
    """The open document at ``uri`` in any spelling, or None."""
    if not isinstance(uri, str):
        return None
    return workspace.text_documents.get(key(uri))


class Generations:
    """A number per open document that changes on every open, change and close."""

    def __init__(self) -> None:
        self._next = itertools.count(1)
        self._now: dict[str, int] = {}

    def bump(self, uri: str) -> None:
        self._now[key(uri)] = next(self._next)

    def close(self, uri: str) -> None:
        self._now.pop(key(uri), None)

    def of(self, uri: str) -> int | None:
        return self._now.get(key(uri))
