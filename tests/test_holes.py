import pytest

from infill.holes import find_markers, holes_from_ranges, parse_range, validate_holes
from infill.types import Hole, InfillError, Length


def test_markers_become_holes_over_the_marker_text():
    text = "a = [MASK]\nb = [MASK:12]\n"
    holes = find_markers(text)
    assert [(h.start, h.end) for h in holes] == [(4, 10), (15, 24)]
    assert holes[0].length == Length.auto(32)
    assert holes[1].length == Length.exact(12)
    assert text[holes[1].start : holes[1].end] == "[MASK:12]"


def test_marker_text_is_configurable():
    text = "x = <<FILL>> + <<FILL:3>>"
    holes = find_markers(text, marker="<<FILL>>", budget=8)
    assert [text[h.start : h.end] for h in holes] == ["<<FILL>>", "<<FILL:3>>"]
    assert holes[0].length == Length.auto(8) and holes[1].length == Length.exact(3)


@pytest.mark.parametrize("bad", ["[MASK:]", "[MASK:x]", "[MASK:0]", "[MASK:-3]", "[MASK:99999]"])
def test_a_marker_with_a_bad_length_is_an_error_naming_it(bad):
    with pytest.raises(InfillError, match="bad marker length"):
        find_markers(f"a {bad} b")


def test_ranges_parse_and_empty_ranges_are_insertions():
    assert parse_range("3:7") == (3, 7)
    (h,) = holes_from_ranges([parse_range("5:5")])
    assert h.is_insertion and h.length.mode == "auto"
    for bad in ["3", "a:b", "1:2:3", "-1:4", ""]:
        with pytest.raises(InfillError, match="bad range"):
            parse_range(bad)


def test_ranges_as_editors_show_them_are_one_based_lines_and_columns():
    text = "def f():\r\n    return 1\n\n"
    start, end = parse_range("2:12-2:13", text)  # the "1", as an editor shows it
    assert text[start:end] == "1"
    assert parse_range("3:1-3:1", text) == (text.index("\n\n") + 1,) * 2  # an empty line
    assert parse_range("1:9-1:9", text) == (8, 8)  # just past the line's end
    for bad, why in [("0:1-1:1", "line 0"), ("2:99-2:99", "column 99"),
                     ("9:1-9:1", "line 9"), ("2:1-", "LINE:COL-LINE:COL")]:
        with pytest.raises(InfillError, match=why):
            parse_range(bad, text)


@pytest.mark.parametrize(
    "holes, message",
    [
        ([Hole(0, 99)], "outside the document"),
        ([Hole(5, 2)], "ends before it starts"),
        ([Hole(0, 4), Hole(3, 6)], "overlap"),
        ([Hole(2, 2), Hole(2, 2)], "overlap"),
        ([], "nothing to fill"),
    ],
)
def test_bad_holes_are_named(holes, message):
    with pytest.raises(InfillError, match=message):
        validate_holes("0123456789", holes)


def test_an_empty_document_is_an_error():
    with pytest.raises(InfillError, match="empty"):
        validate_holes("", [Hole(0, 0)])


def test_adjacent_holes_are_fine_and_come_back_sorted():
    holes = validate_holes("0123456789", [Hole(4, 6), Hole(0, 4), Hole(6, 6)])
    assert [(h.start, h.end) for h in holes] == [(0, 4), (4, 6), (6, 6)]
