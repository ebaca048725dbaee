"""Reading a local checkpoint: config, safetensors shards, tokenizer; with clear errors.

Weights stream shard by shard, each tensor cast and moved to its device as it is read, into
a module built on the meta device: no full fp32 copy ever exists.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Protocol

import torch
from torch import nn


class ModelLoadError(RuntimeError):
    """A model directory that cannot be loaded; the message says which file and why."""


def read_config(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"model directory {path} does not exist")
    if not path.is_dir():
        raise ModelLoadError(f"model path {path} is not a directory")
    cfg = path / "config.json"
    if not cfg.exists():
        raise ModelLoadError(f"{path} has no config.json: not a model directory")
    try:
        data = json.loads(cfg.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelLoadError(f"{cfg} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{cfg} must hold a JSON object")
    return data


def inside(path: str | Path, name: object, what: str) -> Path:
    """The file ``name`` that a model directory ``path`` names (a shard index entry, an
    adapter, a tokenizer file), refused unless it lies inside ``path``.

    Judged on the name, not by resolving links: a hub snapshot's files are symlinks into
    ``../../blobs`` and the default's adapted directory links its base's files; what a
    directory's own JSON may not do is name ``/etc/passwd`` or ``../../outside/x``.
    """
    from pathlib import PurePosixPath, PureWindowsPath

    if not isinstance(name, str) or not name.strip():
        raise ModelLoadError(f"{path}: {what} names {name!r}, not a file name")
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if (PurePosixPath(name).is_absolute() or PureWindowsPath(name).drive
            or PureWindowsPath(name).is_absolute() or ".." in parts or "\0" in name):
        raise ModelLoadError(f"{path}: {what} names {name!r}, which is outside the model "
                             "directory; refusing to open it")
    return Path(path) / name


#: JSON files of a model directory that name other files, and where they name them.
_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def check_named_files(path: str | Path) -> None:
    """Refuse a model directory whose shard indexes, ``tokenizer_config.json`` or Lacuna
    section name a file outside it (``inside``), before any loader (ours or transformers')
    follows the name."""
    path = Path(path)
    for index in _INDEXES:
        if (path / index).is_file():
            for name in _weight_map(path / index).values():
                inside(path, name, index)
    tok = _json_object(path / "tokenizer_config.json")
    for key, value in tok.items():
        if key.endswith("_file") and value is not None:
            inside(path, value, f"tokenizer_config.json {key} (remove the key if stale)")
    section = _json_object(path / "config.json").get("lacuna")
    if isinstance(section, dict) and section.get("adapter"):
        inside(path, section["adapter"], "config.json lacuna.adapter")


def _json_object(file: Path) -> dict:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # absent or broken: the loader that needs it says so
    return data if isinstance(data, dict) else {}


def _weight_map(index: Path) -> dict:
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ModelLoadError(f"{index} is not a valid shard index: {e}") from None
    if not isinstance(weight_map, dict):
        raise ModelLoadError(f"{index} is not a valid shard index: weight_map is no object")
    return weight_map


def shard_files(path: str | Path) -> list[Path]:
    """The safetensors files of a checkpoint, following ``model.safetensors.index.json``."""
    path = Path(path)
    index = path / "model.safetensors.index.json"
    if index.exists():
        weight_map = _weight_map(index)
        files = [inside(path, name, index.name) for name in dict.fromkeys(weight_map.values())]
        missing = [f.name for f in files if not f.exists()]
        if missing:
            raise ModelLoadError(f"{path} lacks shards named in its index: {', '.join(missing)}")
        return files
    single = path / "model.safetensors"
    if single.exists():
        return [single]
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise ModelLoadError(f"{path} has no safetensors weights (model.safetensors)")
    return files


def iter_tensors(path: str | Path) -> Iterator[tuple[str, torch.Tensor]]:
    """``(name, tensor)`` for every tensor of every shard, one at a time, on the CPU."""
    from safetensors import SafetensorError, safe_open

    for file in shard_files(path):
        try:
            with safe_open(str(file), framework="pt", device="cpu") as f:
                for name in f.keys():
                    yield name, f.get_tensor(name)
        except (SafetensorError, OSError, ValueError) as e:
            raise ModelLoadError(f"weights file {file} is corrupt or unreadable: {e}") from None


class WeightPlacer(Protocol):
    """Takes over placing weights while they stream in (``quant/`` implements it).

    ``load_into`` calls ``begin`` once with the module still on the meta device, before any
    tensor is read (a placer may check memory there, or fill the module itself from a saved
    quantized copy and return True, in which case no checkpoint tensor is read); then
    ``place`` for every checkpoint tensor as it arrives, on the CPU in its stored dtype, under
    the module's parameter name (return True when the placer put it in place itself, e.g.
    quantized straight onto the device, so at most one layer is ever held unquantized);
    then ``finish`` after the last tensor and before tied weights are re-tied.
    """

    def begin(self, module: nn.Module, path: Path, device: torch.device,
              dtype: torch.dtype) -> bool: ...

    def place(self, module: nn.Module, name: str, tensor: torch.Tensor,
              device: torch.device, dtype: torch.dtype) -> bool: ...

    def finish(self, module: nn.Module, device: torch.device, dtype: torch.dtype) -> None: ...


_PLACER: ContextVar[WeightPlacer | None] = ContextVar("lacuna_weight_placer", default=None)


@contextmanager
def placing(placer: WeightPlacer | None) -> Iterator[None]:
    """Every ``load_into`` inside this block (this thread only) goes through ``placer``."""
    token = _PLACER.set(placer)
    try:
        yield
    finally:
        _PLACER.reset(token)


def load_into(
    module: nn.Module,
    path: str | Path,
    rename: Callable[[str], str | None],
    *,
    device: torch.device,
    dtype: torch.dtype,
    transform: Callable[[str, torch.Tensor], torch.Tensor] | None = None,
    tensors: Iterable[tuple[str, torch.Tensor]] | None = None,
) -> None:
    """Fill a meta-device ``module`` from the checkpoint at ``path``.

    ``rename`` maps a checkpoint name to the module's parameter name (``None`` skips it);
    ``transform`` may reshape a tensor on the way (fused projections, permutations);
    ``tensors`` replaces the safetensors shards of ``path`` as the source (a GGUF file's
    tensors, dequantized one at a time). Every parameter must be found, with the shape the
    module expects. A module with ``keep_float32`` set (a sigmoid MoE router) keeps its
    parameters in float32 whatever ``dtype`` is.
    """
    expected = dict(module.named_parameters())
    loaded: set[str] = set()
    placer = _PLACER.get()
    filled = placer is not None and placer.begin(module, Path(path), device, dtype)
    source = iter_tensors(path) if tensors is None else tensors
    for name, tensor in () if filled else source:
        target = rename(name)
        if target is None:
            continue
        if transform is not None:
            tensor = transform(name, tensor)
        if target not in expected:
            raise ModelLoadError(f"checkpoint tensor {name!r} has no place in the model")
        want = expected[target].shape
        if tuple(tensor.shape) != tuple(want):
            raise ModelLoadError(
                f"checkpoint tensor {name!r} has shape {tuple(tensor.shape)}, "
                f"the config implies {tuple(want)}"
            )
        loaded.add(target)
        if placer is not None and placer.place(module, target, tensor, device, dtype):
            continue
        owner_name, _, leaf = target.rpartition(".")
        owner = module.get_submodule(owner_name) if owner_name else module
        want = torch.float32 if getattr(owner, "keep_float32", False) else dtype
        value = tensor.to(device=device, dtype=want if tensor.is_floating_point() else None)
        owner._parameters[leaf] = nn.Parameter(value, requires_grad=False)
    if placer is not None:
        placer.finish(module, device, dtype)
    tie = getattr(module, "tie_weights", None)
    if tie is not None:
        tie()
    missing = [
        n for n, p in module.named_parameters(remove_duplicate=False)
        if p.device.type == "meta"
    ]
    if missing:
        shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
        raise ModelLoadError(f"checkpoint at {path} lacks {len(missing)} tensors: {shown}")


def load_tokenizer(path: str | Path):
    """A fast tokenizer from local files only (offsets need the Rust tokenizer)."""
    from transformers import AutoTokenizer

    try:
        # trust_remote_code=False: never run a checkpoint's tokenizer code, and never stop
        # to ask on stdin (transformers prompts when config.json has an auto_map).
        tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True,
                                            trust_remote_code=False)
    except Exception as e:  # transformers raises many types for a broken directory
        # One line: transformers' messages run over several.
        first = str(e).strip().splitlines()[0].rstrip(" :") if str(e).strip() else type(e).__name__
        if not (Path(path) / "tokenizer.json").is_file():
            first += " (the directory has no tokenizer.json: save the model's fast tokenizer there)"
        raise ModelLoadError(f"cannot load the tokenizer in {path}: {first}") from None
    if not getattr(tok, "is_fast", False):
        raise ModelLoadError(f"the tokenizer in {path} has no fast (tokenizer.json) version")
    return tok


def transformers_placement(device: torch.device) -> dict:
    """``from_pretrained`` keywords that put weights on ``device`` as they load.

    transformers loads straight to a device only through ``device_map``, which needs
    ``accelerate``; without it the weights load on the CPU (already in the target dtype)
    and the caller moves the model.
    """
    import importlib.util

    if device.type != "cpu" and importlib.util.find_spec("accelerate") is not None:
        return {"device_map": str(device)}
    return {}


def pick_device(device: str | None) -> torch.device:
    """``auto``/``None``: CUDA when present, else CPU; anything else as given."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ModelLoadError(f"unknown device {device!r}: {e}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("device 'cuda' was asked for, but no CUDA GPU is available")
    return dev


def pick_dtype(dtype: str | None, device: torch.device) -> torch.dtype:
    """bf16 on CUDA, fp32 on CPU (this CPU has no native bf16: it is 3-5x slower there)."""
    if dtype in (None, "auto"):
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
             "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
    if dtype not in table:
        raise ModelLoadError(f"unknown dtype {dtype!r} (use {', '.join(sorted(table))})")
    return table[dtype]
