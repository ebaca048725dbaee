"""The function-body query on real-looking files, and writing a body end to end."""

from __future__ import annotations

import pytest
from support import ScriptedDenoiser, ids_of

from grammars.constraint import syntax_errors
from grammars.functions import find_function_body, to_hole, write_body
from grammars.registry import parser_for
from infill.edits import apply_edits

PYTHON = '''import functools


class Stack:
    """A stack."""

    def __init__(self):
        self.items = []

    @functools.cache
    def peek(self, depth: int = 0) -> int:
        """Return the item `depth` from the top."""
        pass

    def push(self, x): ...

    def size(self):
        """How many items."""


def outer(x):
    def inner(y):
        raise NotImplementedError
    return inner(x)


def done(x):
    return x
'''

JAVASCRIPT = '''import { h } from "./h.js";

class Cart {
  constructor() {
    this.items = [];
  }

  total() {}
}

const double = (xs) => {
  // TODO
};

function main() {
  const cb = function () {
  };
  return double([1, 2]).map((x) => x + 1);
}
'''

TYPESCRIPT = '''export interface Shape {
  area(): number;
}

export class Circle implements Shape {
  constructor(private r: number) {}

  area(): number {
    throw new Error("not implemented");
  }
}

export function clamp(x: number, lo: number, hi: number): number {
}

export const sum = (xs: number[]): number => {};
'''

RUST = '''use std::fmt;

struct Point {
    x: f64,
    y: f64,
}

impl Point {
    /// Distance from the origin.
    pub fn norm(&self) -> f64 {
        todo!()
    }

    pub fn new(x: f64, y: f64) -> Self {
        Point { x, y }
    }
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        unimplemented!()
    }
}

fn main() {}
'''

GO = '''package geometry

import "math"

type Point struct{ X, Y float64 }

// Max returns the larger of a and b.
func Max(a, b int) int {
}

func (p *Point) Norm() float64 {
	panic("not implemented")
}

func Hyp(a, b float64) float64 {
	return math.Sqrt(a*a + b*b)
}
'''


def at(text: str, needle: str) -> int:
    i = text.find(needle)
    assert i >= 0, needle
    return i


@pytest.mark.parametrize("language,text,needle,name,placeholder", [
    ("python", PYTHON, "pass", "peek", "pass"),
    ("python", PYTHON, "@functools.cache", "peek", "pass"),     # on the decorator
    ("python", PYTHON, "def push", "push", "..."),               # one-line def
    ("python", PYTHON, "How many", "size", ""),                  # docstring only
    ("python", PYTHON, "raise", "inner", "raise NotImplementedError"),  # nested
    ("javascript", JAVASCRIPT, "total()", "total", ""),         # method
    ("javascript", JAVASCRIPT, "// TODO", "double", "// TODO"),  # arrow function
    ("javascript", JAVASCRIPT, "function ()", "cb", ""),         # function expression
    ("typescript", TYPESCRIPT, "not implemented", "area", 'throw new Error("not implemented");'),
    ("typescript", TYPESCRIPT, "clamp", "clamp", ""),
    ("typescript", TYPESCRIPT, "=> {}", "sum", ""),
    ("rust", RUST, "todo!", "norm", "todo!()"),                  # impl block
    ("rust", RUST, "unimplemented", "fmt", "unimplemented!()"),  # trait impl
    ("rust", RUST, "fn main", "main", ""),
    ("go", GO, "Max(", "Max", ""),
    ("go", GO, "Norm", "Norm", 'panic("not implemented")'),     # method
])
def test_finds_the_placeholder_body(language, text, needle, name, placeholder):
    body = find_function_body(text, language, at(text, needle))
    assert body is not None
    assert body.name == name
    assert body.placeholder == placeholder
    # Writing a plausible body through the edit leaves a file that parses.
    line = {"python": "return 0", "go": "return 0"}.get(language, "return 0;")
    if language == "rust":
        line = "0.0" if name == "norm" else "Ok(())" if name == "fmt" else "let _ = 0;"
    if language == "python" and name == "size":
        line = "return 0"
    new = apply_edits(text, [body.edit(line)])
    assert not syntax_errors(parser_for(language).parse(new.encode())), new
    # The body sits on its own line at the body's indentation.
    assert f"\n{body.indent}{line}" in new


@pytest.mark.parametrize("language,text,needle", [
    ("python", PYTHON, "return x"),           # a written body is left alone
    ("python", PYTHON, "self.items = []"),
    ("rust", RUST, "Point { x, y }"),
    ("go", GO, "math.Sqrt"),
    ("javascript", JAVASCRIPT, "x + 1"),       # expression-bodied arrow: nothing to write
])
def test_written_bodies_are_not_offered(language, text, needle):
    body = find_function_body(text, language, at(text, needle))
    assert body is None or body.name not in ("done", "__init__", "new", "Hyp", "main")


def test_indentation_follows_the_file():
    two = "class A {\n  m() {}\n}\n"
    body = find_function_body(two, "javascript", at(two, "m()"))
    assert body.indent == "    " and body.trail == "\n  "
    assert find_function_body("print(1)\n", "python", 0) is None
    assert find_function_body("x", "plaintext", 0) is None


def test_to_hole_makes_an_auto_length_hole_in_the_prepared_document():
    body = find_function_body(TYPESCRIPT, "typescript", at(TYPESCRIPT, "clamp"))
    doc, hole = to_hole(body, TYPESCRIPT, budget=40)
    assert hole.length.mode == "auto" and hole.length.tokens == 40
    assert doc[: hole.start].endswith("number {\n  ") and doc[hole.end :].startswith("\n}")


def test_write_body_fills_with_the_constraint_on():
    text = "def add(a, b):\n    pass\n"
    # The model's first wish at the last position breaks the body; the second fixes it.
    wishes = [[[t] for t in ids_of("return a +")] + [[ids_of(")")[0], ids_of(" b")[0]]]]
    out = write_body(text, "python", at(text, "pass"), ScriptedDenoiser(wishes),
                     budget=len(wishes[0]))
    assert out is not None and out.satisfied is True
    new = apply_edits(text, [out.edit])
    assert new == "def add(a, b):\n    return a + b\n"
    off = write_body(text, "python", at(text, "pass"), ScriptedDenoiser(wishes),
                     budget=len(wishes[0]), constrain=False)
    assert apply_edits(text, [off.edit]) == "def add(a, b):\n    return a +)\n"


def test_tsx_reads_the_javascript_queries_it_inherits():
    text = "export function Card(props: Props) {}\nconst x = <div>{1}</div>;\n"
    body = find_function_body(text, "typescriptreact", at(text, "{}"))
    assert body is not None and body.name == "Card"
    new = apply_edits(text, [body.edit("return null;")])
    assert not syntax_errors(parser_for("typescriptreact").parse(new.encode())), new
