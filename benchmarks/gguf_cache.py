"""GGUF tensors dequantized on every load against the converted-once cache.

    .venv/bin/python -m benchmarks.gguf_cache [--gguf FILE] [--repeat 3]

Streams every tensor of a GGUF file (default: the embedded SmolLM2-135M Q4_1 file, a real
quantized llama.cpp file) the three ways a GGUF load can get them: dequantized with
``gguf.quants`` (no cache), dequantized while written into the cache (the first load), and
read back from the cache (every later load), in float32 and bfloat16. Prints the median
seconds of ``--repeat`` runs and each against plain dequantizing, measured in one run. The
cache reads come from the page cache (the shards were just written): a cold disk adds
2 or 4 bytes a weight at its read speed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from infill.models.runtime import gguf_reader, tensor_cache


def _drain(tensors) -> int:
    """Weights streamed, each tensor's every memory page read (a memory-mapped cache shard
    costs nothing until its pages are touched; the loader's first pass touches them all)."""
    count = 0
    for _, t in tensors:
        int(t.reshape(-1).view(torch.uint8)[::4096].sum())
        count += t.numel()
    return count


def _timed(run, repeat: int) -> tuple[float, int]:
    seconds, count = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        count = run()
        seconds.append(time.perf_counter() - t0)
    return statistics.median(seconds), count


def main(argv: list[str] | None = None) -> int:
    from infill.models.embedded.smollm2 import gguf_path

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gguf", type=Path, default=None)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    file = args.gguf or gguf_path()
    reader = gguf_reader.open_gguf(file)
    arch = str(gguf_reader.field(reader, "general.architecture"))
    heads = int(gguf_reader.field(reader, f"{arch}.attention.head_count"))
    kv = int(gguf_reader.field(reader, f"{arch}.attention.head_count_kv", heads))

    def convert():
        return gguf_reader.stream_tensors(reader, arch, heads, kv)

    plain, weights = _timed(lambda: _drain(convert()), args.repeat)
    rows = [("dequantize (gguf.quants), no cache", plain)]
    for dtype in (torch.float32, torch.bfloat16):
        name = str(dtype).removeprefix("torch.")
        with tempfile.TemporaryDirectory() as tmp:
            first, cached = [], []
            for i in range(args.repeat):
                t0 = time.perf_counter()
                _drain(tensor_cache.cached_tensors(Path(tmp) / f"run{i}", convert, dtype))
                first.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                _drain(tensor_cache.cached_tensors(Path(tmp) / f"run{i}", convert, dtype))
                cached.append(time.perf_counter() - t0)
        rows += [(f"first load: dequantize + write the cache ({name})",
                  statistics.median(first)),
                 (f"later loads: read the cache ({name})", statistics.median(cached))]
    types = sorted({t.tensor_type.name for t in reader.tensors})
    print(f"file: {file.name} ({file.stat().st_size / 2**20:.0f} MiB, {weights:,} weights, "
          f"{len(reader.tensors)} tensors, {', '.join(types)}); torch threads "
          f"{torch.get_num_threads()}; median of {args.repeat}\n")
    print("| tensors from | seconds | x dequantize |\n|---|---|---|")
    for name, s in rows:
        print(f"| {name} | {s:.2f} | {s / plain:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
