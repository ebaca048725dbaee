"""Parameters a function body never reads, counted around a span of the document."""

from grammars.usage import unused_parameters


def unread(text: str, around: str, language: str = "python") -> int:
    data = text.encode()
    at = data.index(around.encode())
    return unused_parameters(data, language, [(at, at + len(around))])


CLAMP = '''def clamp(x: float, low: float, high: float = 1.0) -> float:
    """Limit x to the range [low, high]."""
    return {fill}
'''


def test_the_parameters_a_fill_leaves_unread_are_counted():
    assert unread(CLAMP.format(fill="(low + high) / 2"), "(low + high) / 2") == 1
    assert unread(CLAMP.format(fill="x"), "return x") == 2
    assert unread(CLAMP.format(fill="min(high, max(low, x))"), "min(high") == 0


def test_a_name_in_the_docstring_or_a_comment_is_not_a_read():
    text = 'def f(a, b):\n    """Uses b."""\n    # b too\n    return a\n'
    assert unread(text, "return a") == 1


def test_self_cls_and_underscored_names_are_never_counted():
    text = "class C:\n    def m(self, _unused, *args, key=None):\n        return key\n"
    assert unread(text, "return key") == 0


def test_only_the_functions_holding_the_span_count():
    text = "def f(a):\n    return 1\n\n\ndef g(b):\n    return b\n"
    assert unread(text, "return b") == 0
    assert unread(text, "return 1") == 1


def test_languages_without_the_query_count_nothing():
    assert unread("function f(a) { return 1; }\n", "return 1", "javascript") == 0
    assert unread("f(a) = 1\n", "= 1", "no-such-language") == 0
