"""The server's limits: huge requests, and how long ghost text waits while one runs.

Each case runs on a fresh ``python -m lsp_server`` (model loaded by a warm-up fill first):
it sends one ``lacuna/fill``, then, while that runs, a ghost-text request
(``textDocument/inlineCompletion``) on a small document, and reports the fill's time and
answer, the ghost text's latency and the server's peak resident memory (``VmHWM``).

Cases: a 5 MB Python document with one ``[MASK]`` (syntax constraint off, then on), 200
``[MASK]`` markers, 10,000 ranges. The last two are beyond ``lsp_server.requests``' limits
and should be refused at once.

    .venv/bin/python -m benchmarks.limits [--model DIR] [--megabytes 5]
    .venv/bin/python -m benchmarks.limits --smoke     # tiny model, 50 kB: a minute's check
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from lsprotocol import types
from pygls.exceptions import JsonRpcException

from benchmarks import arg_parser
from tests.lsp_support import Session, server_env

GHOST_URI = "file:///bench/ghost.py"
GHOST_DOC = "def add(a, b):\n    return \n"


def big_document(size: int) -> str:
    """About ``size`` characters of Python with one ``[MASK]`` in the middle."""
    chunk = "def f{i}(x):\n    return x + {i}\n\n"
    lines, total, i = [], 0, 0
    while total < size:
        piece = chunk.format(i=i)
        lines.append(piece)
        total += len(piece)
        i += 1
    lines.insert(len(lines) // 2, "def middle(x):\n    return [MASK]\n\n")
    return "".join(lines)


def cases(size: int) -> list[tuple[str, str, dict]]:
    big = big_document(size)
    markers = "".join(f"x{i} = [MASK]\n" for i in range(200))
    ranges = [{"start": {"line": i % 50, "character": 0}, "end": {"line": i % 50,
                                                                  "character": 0}}
              for i in range(10_000)]
    mb = f"{size / 1e6:g} MB"
    return [
        (f"{mb}, one [MASK], constraint off", big, {"options": {"syntaxConstraint": False}}),
        (f"{mb}, one [MASK], constraint on", big, {"options": {"syntaxConstraint": True}}),
        ("200 [MASK] markers", markers, {}),
        ("10,000 ranges", "x = 1\n" * 50, {"ranges": ranges}),
    ]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def ghost(s: Session):
    return s.client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=GHOST_URI),
        position=types.Position(line=1, character=11),
        context=types.InlineCompletionContext(
            trigger_kind=types.InlineCompletionTriggerKind.Invoked)))


def run_case(env: dict, model: str, text: str, params: dict, timeout: float) -> dict:
    s = Session(env)
    s.start()
    try:
        s.initialize({"model": model, "budget": 16, "inlineBudget": 8}, progress=False)
        s.open(GHOST_URI, GHOST_DOC)
        s.request("lacuna/fill", {"textDocument": {"uri": GHOST_URI}, "ranges": [
            {"start": {"line": 1, "character": 11}, "end": {"line": 1, "character": 11}}]},
            timeout=timeout)  # warm-up: the model loads here
        s.open("file:///bench/case.py", text)
        t0 = time.perf_counter()
        fut = s.send("lacuna/fill", {"textDocument": {"uri": "file:///bench/case.py"},
                                     **params})
        done_at: list[float] = []
        fut.add_done_callback(lambda _: done_at.append(time.perf_counter()))
        s.run(asyncio.sleep(0.2))  # the client keeps reading while it waits
        g0 = time.perf_counter()
        s.run(ghost(s), timeout)
        ghost_s = time.perf_counter() - g0
        try:
            out = s.wait(fut, timeout)
            answer = f"{len(out['edits'])} edit(s)"
        except JsonRpcException as e:
            answer = f"{e.code}: {e.message[:60]}"
        except TimeoutError:
            answer = f"no answer in {timeout:g} s"
        fill_s = (done_at[0] if done_at else time.perf_counter()) - t0
        return {"fill_s": fill_s, "ghost_s": ghost_s, "answer": answer,
                "peak_mb": peak_rss_mb(s.client._server.pid)}
    finally:
        s.stop()


def main() -> None:
    ap = arg_parser(__doc__)
    ap.add_argument("--megabytes", type=float, default=5.0, help="the document's size")
    ap.add_argument("--timeout", type=float, default=600.0,
                    help="seconds to wait for the fill's answer")
    ap.add_argument("--smoke", action="store_true",
                    help="the tiny test model and a 50 kB document")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="lacuna-limits-")
    model, size = args.model, int(args.megabytes * 1e6)
    if args.smoke:
        from infill.models.embedded.tiny import build_tiny_model

        model, size = str(build_tiny_model(Path(tmp) / "tiny")), 50_000
    env = server_env(model, tmp)
    print(f"model: {model}\n")
    print("| case | fill time (s) | answer | ghost text meanwhile (s) | peak RSS (MB) |")
    print("|---|---:|---|---:|---:|")
    for name, text, params in cases(size):
        r = run_case(env, model, text, params, args.timeout)
        print(f"| {name} | {r['fill_s']:.2f} | {r['answer']} | {r['ghost_s']:.2f} "
              f"| {r['peak_mb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
