"""End-to-end single-line latency through the real language server.

Spawns ``python -m lsp_server``, opens each HumanEval single-line problem as a document and
asks for the line two ways: ``textDocument/inlineCompletion`` at the hole (ghost text,
the latency-first preset) and ``lacuna/fill`` on an empty range there (the explicit fill,
quality-first settings). The clock runs from sending the request to receiving the answer,
model already loaded (one warm-up request first). The syntax constraint is off for both unless
``--constrain`` (then on for both): with a model that breaks the syntax, its remasks are what
gets timed.

    .venv/bin/python -m benchmarks.lsp_latency --limit 20 [--model DIR]
"""

from __future__ import annotations

import statistics
import tempfile
import time

from lsprotocol import types

from benchmarks import arg_parser, humaneval
from tests.lsp_support import Session, server_env


def position_of(text: str, offset: int) -> dict:
    line = text.count("\n", 0, offset)
    col_text = text[text.rfind("\n", 0, offset) + 1 : offset]
    return {"line": line, "character": len(col_text.encode("utf-16-le")) // 2}


def main() -> None:
    ap = arg_parser(__doc__)
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--budget", type=int, default=16)
    ap.add_argument("--constrain", action="store_true",
                    help="keep the syntax constraint on (off: the sampler's own latency)")
    args = ap.parse_args()
    problems = humaneval.load("single-line", args.limit)
    env = server_env(args.model, tempfile.mkdtemp(prefix="lacuna-bench-"))
    env.pop("OMP_NUM_THREADS", None)
    env.pop("LACUNA_CACHE", None)
    s = Session(env)
    s.start()
    s.initialize({"model": args.model, "inlineBudget": args.budget, "budget": args.budget,
                  "syntaxConstraint": args.constrain,
                  "inlineSyntaxConstraint": args.constrain}, progress=False)
    inline, explicit, ok_inline, ok_explicit = [], [], 0, 0
    for i, prob in enumerate([problems[0], *problems]):
        text, at = humaneval.document(prob)
        uri = f"file:///bench/p{i}.py"
        s.open(uri, text, "python", 1)
        pos = position_of(text, at)
        t0 = time.perf_counter()
        got = s.run(s.client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(**pos),
                context=types.InlineCompletionContext(
                    trigger_kind=types.InlineCompletionTriggerKind.Invoked)),
        ), timeout=600)
        t1 = time.perf_counter()
        items = got.items if hasattr(got, "items") else got
        line = items[0].insert_text if items else ""
        t2 = time.perf_counter()
        out = s.request("lacuna/fill", {"textDocument": {"uri": uri}, "version": 1,
                                        "ranges": [{"start": pos, "end": pos}]}, timeout=600)
        t3 = time.perf_counter()
        if i == 0:
            continue  # warm-up: the model loads here
        inline.append(t1 - t0)
        explicit.append(t3 - t2)
        ok_inline += humaneval.passes(prob, line)
        edits = out["edits"] if isinstance(out, dict) else out.edits
        new = edits[0]["newText"] if isinstance(edits[0], dict) else edits[0].new_text
        ok_explicit += humaneval.passes(prob, new)
    s.stop()
    n = len(problems)
    print(f"model: {args.model}; machine: {humaneval.machine()}; {n} single-line problems")
    print("| request | median s | p90 s | pass@1 % |")
    print("|---|---|---|---|")
    for name, times, ok in [("inlineCompletion (latency-first)", inline, ok_inline),
                            ("lacuna/fill (quality-first)", explicit, ok_explicit)]:
        print(f"| {name} | {statistics.median(times):.2f} | "
              f"{humaneval.percentile(times, 0.9):.2f} | {100 * ok / n:.1f} |")


if __name__ == "__main__":
    main()
