"""Tensors converted once and kept: the cache a converted checkpoint loads from next time.

Dequantizing a GGUF file with ``gguf.quants`` (numpy) runs at about 250-330 M weights/s on
a 2-core machine, 25-30 s for a 7B model on every load; the same tensors read back from
safetensors in the load dtype cost a disk read. ``cached_tensors`` streams the converted
tensors to the loader and, on the way, into shards of at most ``SHARD_BYTES`` (so no full
copy of the network is ever held), published atomically when the stream ends; a later load
with the same source file (path, size, modification time) and dtype reads the shards.

``$LACUNA_CACHE`` is where it lives (as the embedded default's conversion);
``$LACUNA_GGUF_CACHE=0`` turns it off (the disk it costs: 2 bytes a weight in bf16, 4 in
float32, several times a 4-bit file).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from .weights import ModelLoadError, iter_tensors, shard_files

#: A shard is written once this many bytes of tensors have arrived.
SHARD_BYTES = 512 * 2**20
_DONE = "converted.json"


def cache_dir() -> Path:
    """Where Lacuna keeps converted and built models (``$LACUNA_CACHE``)."""
    base = os.environ.get("LACUNA_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "lacuna"
    )
    return Path(base)


def enabled() -> bool:
    return os.environ.get("LACUNA_GGUF_CACHE", "1").strip().lower() not in ("0", "false", "no")


def entry(source: Path, dtype: torch.dtype, kind: str = "gguf") -> Path:
    """The cache folder for ``source`` converted to ``dtype``: a new one whenever the file
    is replaced or touched."""
    source = source.resolve()
    stat = source.stat()
    key = f"{source}\0{stat.st_size}\0{stat.st_mtime_ns}\0{dtype}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_dir() / f"{kind}-{source.stem[:40]}-{str(dtype).removeprefix('torch.')}-{digest}"


def complete(folder: Path) -> bool:
    return (folder / _DONE).exists()


def cached_tensors(folder: Path, convert: Callable[[], Iterator[tuple[str, torch.Tensor]]],
                   dtype: torch.dtype, size: int | None = None
                   ) -> Iterator[tuple[str, torch.Tensor]]:
    """The tensors of a complete ``folder``; else those ``convert`` yields, each also
    written (in ``dtype``) into a staging folder published as ``folder`` once all have
    arrived, the user told on stderr (``size``: the weights' count, for the disk it takes).
    A stream that stops early (an error, a cancelled load) publishes nothing."""
    if complete(folder) and _readable(folder):
        yield from iter_tensors(folder)
        return
    shutil.rmtree(folder, ignore_errors=True)  # half gone or damaged: converted anew
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    except OSError:  # a read-only cache costs speed, not the load
        yield from convert()
        return
    disk = "" if size is None else f", {size * dtype.itemsize / 2**30:.1f} GiB"
    print(f"lacuna: converting the tensors once into {folder}{disk} "
          "(LACUNA_GGUF_CACHE=0 skips the cache)", file=sys.stderr)
    shard: dict[str, torch.Tensor] = {}
    held, shards, writing = 0, [], True
    try:
        for name, tensor in convert():
            yield name, tensor
            if not writing:
                continue
            kept = tensor.to(dtype) if tensor.is_floating_point() else tensor
            shard[name] = kept.contiguous()
            held += kept.numel() * kept.element_size()
            if held >= SHARD_BYTES:
                writing = _write_shard(staging, shard, shards)
                shard, held = {}, 0
        if writing and (shard or not shards):
            writing = _write_shard(staging, shard, shards)
        if writing:
            _publish(staging, folder, shards)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _readable(folder: Path) -> bool:
    """Every shard the index names is there with a readable header (a damaged cache is
    converted again rather than failing the load)."""
    from safetensors import SafetensorError, safe_open

    try:
        for file in shard_files(folder):
            with safe_open(str(file), framework="pt") as f:
                f.keys()
    except (ModelLoadError, SafetensorError, OSError, ValueError):
        return False
    return True


def _write_shard(staging: Path, tensors: dict[str, torch.Tensor], shards: list) -> bool:
    """Write one shard; ``False`` when the disk refuses (full, read-only): the load goes on,
    uncached."""
    from safetensors.torch import save_file

    name = f"model-{len(shards) + 1:05d}.safetensors"
    try:
        save_file(tensors, str(staging / name), metadata={"format": "pt"})
    except OSError:
        return False
    shards.append((name, list(tensors)))
    return True


def _publish(staging: Path, folder: Path, shards: list) -> None:
    weight_map = {t: name for name, names in shards for t in names}
    try:
        (staging / "model.safetensors.index.json").write_text(
            json.dumps({"metadata": {}, "weight_map": weight_map}))
        (staging / _DONE).write_text(json.dumps({"shards": len(shards)}))
        staging.rename(folder)
    except OSError:  # another process published first, or the disk refused: uncached
        pass
