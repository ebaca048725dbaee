"""LSP positions <-> str offsets, UTF-16 first (emoji, CJK, every line break)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lsprotocol import types

from lsp_server.positions import (
    PositionError,
    line_spans,
    offset_at,
    position_at,
    range_at,
    range_offsets,
    units,
)

TEXT = "a🙂b\n漢字🙂x\r\n\rlast"


def P(line, character):
    return types.Position(line=line, character=character)


def test_emoji_and_cjk_in_utf16():
    # line 0: a(1) 🙂(2) b(1)
    assert offset_at(TEXT, P(0, 0)) == 0
    assert offset_at(TEXT, P(0, 1)) == 1
    assert offset_at(TEXT, P(0, 3)) == 2  # after the emoji: two UTF-16 units
    assert offset_at(TEXT, P(0, 4)) == 3
    # line 1: 漢(1) 字(1) 🙂(2) x(1)
    assert offset_at(TEXT, P(1, 2)) == 6
    assert offset_at(TEXT, P(1, 4)) == 7
    assert position_at(TEXT, 7) == P(1, 4)
    assert position_at(TEXT, 2) == P(0, 3)


def test_other_encodings():
    assert offset_at(TEXT, P(1, 6), "utf-8") == 6  # 漢字 = 3 + 3 bytes
    assert offset_at(TEXT, P(1, 2), "utf-32") == 6
    assert position_at(TEXT, 7, "utf-8") == P(1, 10)
    assert units("🙂漢", "utf-8") == 7


def test_line_breaks_crlf_and_cr():
    assert [TEXT[a:b] for a, b in line_spans(TEXT)] == ["a🙂b", "漢字🙂x", "", "last"]
    assert offset_at(TEXT, P(3, 2)) == TEXT.index("last") + 2
    # an offset between \r and \n sits at the end of its line
    assert position_at(TEXT, TEXT.index("\r\n") + 1) == P(1, 5)


def test_lenient_clamps_strict_refuses():
    assert offset_at(TEXT, P(0, 99)) == 3
    assert offset_at(TEXT, P(99, 0)) == len(TEXT)
    assert offset_at(TEXT, P(0, 2)) == 1  # inside the surrogate pair: back to its start
    with pytest.raises(PositionError, match="past the end of line 0"):
        offset_at(TEXT, P(0, 5), strict=True)
    with pytest.raises(PositionError, match="line 9 is past the end"):
        offset_at(TEXT, P(9, 0), strict=True)
    with pytest.raises(PositionError, match="inside the character"):
        offset_at(TEXT, P(0, 2), strict=True)
    with pytest.raises(PositionError, match="ends before it starts"):
        range_offsets(TEXT, types.Range(start=P(1, 1), end=P(0, 1)), strict=True)


def test_range_round_trip():
    rng = range_at(TEXT, 5, 7)
    assert rng == types.Range(start=P(1, 1), end=P(1, 4))
    assert range_offsets(TEXT, rng, strict=True) == (5, 7)


ALPHABET = st.sampled_from(list("ab \t\n\r") + ["\r\n", "漢", "字", "🙂", "𝄞", "é", "\u2028"])
texts = st.lists(ALPHABET, max_size=40).map("".join)


def _valid_offsets(text):
    # offsets that are not between \r and \n (those are not distinct positions)
    return [i for i in range(len(text) + 1) if not (0 < i < len(text) and text[i - 1 : i + 1]
                                                   == "\r\n")]


@settings(max_examples=200, deadline=None)
@given(texts, st.data(), st.sampled_from(["utf-16", "utf-8", "utf-32"]))
def test_offset_position_round_trip(text, data, encoding):
    offset = data.draw(st.sampled_from(_valid_offsets(text)))
    pos = position_at(text, offset, encoding)
    assert offset_at(text, pos, encoding, strict=True) == offset


@settings(max_examples=200, deadline=None)
@given(texts, st.data())
def test_utf16_matches_a_reference(text, data):
    """Against a reference built from Python's own UTF-16 encoder, line by line."""
    import re

    lines = re.split(r"\r\n|\r|\n", text)
    line = data.draw(st.integers(0, len(lines) - 1))
    content = lines[line]
    boundaries = [len(content[:i].encode("utf-16-le")) // 2 for i in range(len(content) + 1)]
    i = data.draw(st.integers(0, len(content)))
    start = sum(len(m) for m in re.findall(r"[^\r\n]*(?:\r\n|\r|\n)", text)[:line])
    assert offset_at(text, P(line, boundaries[i]), strict=True) == start + i
    assert position_at(text, start + i) == P(line, boundaries[i])
