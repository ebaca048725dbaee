"""Line-aware shaping of auto-length fills: what an editor user expects at line edges.

- At the end of a line (nothing but the newline after the cursor) a fill is one line.
- Between two lines (the hole starts and ends at line starts) a fill is whole lines.
- A fill never leaves a half line glued to the text after it.
- Between two sentences of a paragraph a fill is whole sentences (``between_sentences``).
- A fill that ends with a line break and indentation, before text that brings its own
  indentation, leaves the indentation to that text (``without_doubled_indent``; exact holes
  too: a token such as ``"\n    "`` spells both).
"""

from __future__ import annotations

import re
from typing import Literal

#: The end of a sentence: its mark, then any closing quotes or brackets.
SENTENCE_END = re.compile(r"[.!?][\"')\]]*$")

LineShape = Literal["single_line", "whole_lines", "free"]


def line_shape(text: str, start: int, end: int) -> LineShape:
    """What the surroundings of ``text[start:end]`` ask of a fill."""
    at_line_start = start == 0 or text[start - 1] == "\n"
    suffix_at_line_start = (
        end == len(text) or text[end - 1] == "\n" if end > start else at_line_start
    )
    if at_line_start and suffix_at_line_start:
        return "whole_lines"
    suffix_is_eol = end == len(text) or text.startswith(("\n", "\r\n"), end)
    prefix_line = text[text.rfind("\n", 0, start) + 1 : start]
    if suffix_is_eol and prefix_line.strip():
        return "single_line"
    return "free"


def shape_fill(fill: str, text: str, start: int, end: int, ended: bool = False) -> str:
    """``fill`` cut or finished so that it fits the line shape at ``[start, end)``.

    ``ended``: the model closed the fill itself (it did not run out of budget), so its
    last line is complete even without a line break."""
    shape = line_shape(text, start, end)
    suffix = text[end:]
    newline = "\r\n" if "\r\n" in text else "\n"
    if shape == "single_line":
        cut = fill.find("\n")
        if cut >= 0:
            fill = fill[:cut].removesuffix("\r")
        return fill
    if shape == "whole_lines" and suffix and fill and not fill.endswith("\n"):
        last = fill.rfind("\n")
        # Keep the complete lines; a lone or finished partial line gets a newline.
        return fill[: last + 1] if last >= 0 and not ended else fill + newline
    return fill


def without_doubled_indent(fill: str, text: str, end: int) -> str:
    """``fill`` without the spaces or tabs after its last line break when the text at
    ``end`` starts with spaces or tabs: the following line is indented once, by itself."""
    last = fill.rfind("\n")
    if last < 0 or fill[last + 1 :].strip(" \t") or text[end : end + 1] not in (" ", "\t"):
        return fill
    return fill[: last + 1]


def between_sentences(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` sits inside a line, after a finished sentence and before
    one that starts (a capital letter): a fill there must end a sentence too."""
    if start == 0 or text[start - 1] == "\n":
        return False
    before = text[:start].rstrip(" \t")
    after = text[end:].lstrip(" \t")
    return bool(SENTENCE_END.search(before)) and after[:1].isupper()
