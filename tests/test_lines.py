"""Line-aware shaping: single lines at line ends, whole lines between lines."""

import pytest

from infill.lines import line_shape, shape_fill, without_doubled_indent


def hole(doc: str):
    start = doc.index("|")
    end = doc.index("|", start + 1) - 1
    return doc.replace("|", ""), start, end


@pytest.mark.parametrize(
    "doc, shape",
    [
        ("x = ||\ny = 2\n", "single_line"),  # cursor at the end of a line with code before it
        ("def f():\n    return |[MASK]|\n", "single_line"),
        ("x = 1\n||y = 2\n", "whole_lines"),  # insertion between two statements
        ("x = 1\n|y = 2\n|z = 3\n", "whole_lines"),  # a selection of whole lines
        ("def f():\n    |[MASK]|\n", "free"),  # an indented body: lines, but no line start
        ("a |b| c", "free"),
    ],
)
def test_line_shapes(doc, shape):
    assert line_shape(*hole(doc)) == shape


def test_a_fill_at_a_line_end_stops_at_its_first_newline():
    text, s, e = hole("x = ||\ny = 2\n")
    assert shape_fill("1 + 2\nprint(x)\n", text, s, e) == "1 + 2"
    text, s, e = hole("x = ||\r\ny = 2\r\n")
    assert shape_fill("1\r\nz", text, s, e) == "1"


def test_a_fill_between_lines_never_glues_a_half_line_to_the_suffix():
    text, s, e = hole("x = 1\n||y = 2\n")
    assert shape_fill("a = 0\nb = ", text, s, e) == "a = 0\n"
    assert shape_fill("a = 0", text, s, e) == "a = 0\n"
    assert shape_fill("a = 0\n", text, s, e) == "a = 0\n"
    text, s, e = hole("x = 1\r\n||y = 2\r\n")
    assert shape_fill("a = 0", text, s, e) == "a = 0\r\n"


def test_free_holes_are_left_alone():
    text, s, e = hole("a |b| c")
    assert shape_fill("one\ntwo", text, s, e) == "one\ntwo"


def test_a_fill_leaves_the_next_line_s_indentation_to_the_next_line():
    doc = "if ok:\n        return True\n    return False\n"
    end = doc.index("    return False")
    assert without_doubled_indent("        return True\n    ", doc, end) == "        return True\n"
    # Not before unindented text, and not inside a line.
    assert without_doubled_indent("x = 1\n    ", "a\nb", 2) == "x = 1\n    "
    assert without_doubled_indent("x = 1  ", doc, end) == "x = 1  "
