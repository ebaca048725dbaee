"""Benchmarks, run from the repository root as modules: ``python -m benchmarks.NAME``."""

from __future__ import annotations

import argparse
import os


def arg_parser(doc: str | None) -> argparse.ArgumentParser:
    """The arguments every benchmark shares: its docstring's first line and ``--model``.

    ``--model`` defaults to ``$LACUNA_MODEL`` and then to the embedded default, so one
    environment variable points every benchmark at the same checkpoint.
    """
    ap = argparse.ArgumentParser(description=(doc or "").splitlines()[0] if doc else None)
    ap.add_argument("--model", default=os.environ.get("LACUNA_MODEL", "default"),
                    help="a model name or path (default: $LACUNA_MODEL, else the embedded one)")
    return ap
