"""A quantized model on disk, loaded back without quantizing again.

The directory holds the source model's ``config.json`` and tokenizer files unchanged, the
quantized network as ``quantized.safetensors`` (parameter names of the native module, the
packed weights and their statistics), and ``lacuna-quant.json``:

    {"format": 1, "mode": "nf4", "dtype": "bfloat16",
     "layers": {"layers.0.self_attn.q_proj": {"mode": "nf4", "in": 4096, "out": 4096,
                                              "bias": false}, ...},
     "aliases": {"lm_head.weight": "embed_tokens.weight"}}

``load_denoiser(DIR, quant=Prequantized(DIR))`` builds the family's network on the meta
device as usual and ``Prequantized.begin`` fills it from these files, layer by layer.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from torch import nn

from .layers import kind_of, module_bytes, restore, serialize
from .modes import QuantError
from .quantizer import QuantReport, _set

MANIFEST = "lacuna-quant.json"
WEIGHTS = "quantized.safetensors"
FORMAT = 1
#: Files of the source directory not copied: its unquantized weights.
SKIP_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".ckpt", ".msgpack", ".h5")


def is_saved(path: str | Path) -> bool:
    return (Path(path) / MANIFEST).exists()


def save_quantized(denoiser, source: str | Path, out: str | Path) -> Path:
    """Write ``denoiser`` (loaded from ``source``, quantized) to the directory ``out``."""
    module = getattr(denoiser, "model", None)
    if not isinstance(module, nn.Module):
        raise QuantError(f"cannot save a {type(denoiser).__name__}: it has no .model")
    source, out = Path(source), Path(out)
    if out.resolve() == source.resolve():
        raise QuantError(f"{out} is the source model: save the quantized copy elsewhere")
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    layers: dict[str, dict] = {}
    inside: list[str] = []
    for name, sub in module.named_modules():
        kind = kind_of(sub)
        if kind is None or any(name.startswith(p + ".") for p in inside):
            continue
        inside.append(name)
        w_in, w_out = _features(sub)
        layers[name] = {"mode": kind, "in": w_in, "out": w_out, "bias": _has_bias(sub)}
        if kind == "int8":
            layers[name]["threshold"] = float(sub.state.threshold)
        tensors.update(serialize(name, sub))
    # everything outside the quantized layers, one copy per shared storage
    aliases: dict[str, str] = {}
    owners: dict[tuple, str] = {}
    rest = [(n, t) for n, t in module.state_dict(keep_vars=True).items()
            if not any(n.startswith(p + ".") for p in inside)]
    for name, t in rest:
        key = (t.data_ptr(), t.dtype, tuple(t.shape))
        if key in owners:
            aliases[name] = owners[key]
            continue
        owners[key] = name
        tensors[name] = t.detach().cpu().contiguous()
    out.mkdir(parents=True, exist_ok=True)
    for f in source.iterdir():
        skip = f.suffix in SKIP_SUFFIXES or f.name in (MANIFEST, "model.safetensors.index.json")
        if f.is_file() and not skip:
            shutil.copy2(f, out / f.name)
    config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    if isinstance(config.get("lacuna"), dict) and config["lacuna"].pop("adapter", None):
        # the adapter is merged into the saved weights already
        (out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    report = getattr(denoiser, "quant_report", None)
    modes = sorted({spec["mode"] for spec in layers.values()})
    manifest = {
        "format": FORMAT,
        "mode": modes[0] if len(modes) == 1 else ("none" if not modes else "mixed"),
        "dtype": str(denoiser.dtype).removeprefix("torch."),
        "bytes_before": getattr(report, "bytes_before", None),
        "parameters": getattr(report, "parameters", None),
        "layers": layers,
        "aliases": aliases,
    }
    save_file(tensors, str(out / WEIGHTS), metadata={"format": "pt", "lacuna-quant": "1"})
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return out


def _features(layer: nn.Module) -> tuple[int, int]:
    if kind_of(layer) == "torch-int8":
        return layer.in_features, layer.out_features
    return layer.in_features, layer.out_features


def _has_bias(layer: nn.Module) -> bool:
    if kind_of(layer) == "torch-int8":
        return layer._weight_bias()[1] is not None
    return layer.bias is not None


class Prequantized:
    """The ``WeightPlacer`` that loads a directory ``save_quantized`` wrote."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.manifest = json.loads((self.path / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise QuantError(f"{self.path / MANIFEST} is unreadable: {e}") from None
        if self.manifest.get("format") != FORMAT:
            raise QuantError(f"{self.path} was saved in quantized format "
                             f"{self.manifest.get('format')!r}; this Lacuna reads {FORMAT}")
        self.mode = str(self.manifest.get("mode"))
        self.requested = self.mode
        self.report: QuantReport | None = None

    def begin(self, module: nn.Module, path: Path, device: torch.device,
              dtype: torch.dtype) -> bool:
        from safetensors import safe_open

        file = self.path / WEIGHTS
        if not file.exists():
            raise QuantError(f"{self.path} lacks {WEIGHTS}")
        saved_dtype = self.manifest.get("dtype")
        want = str(dtype).removeprefix("torch.")
        if saved_dtype and saved_dtype != want:
            raise QuantError(f"{self.path} was quantized for {saved_dtype}; load it with that "
                             f"dtype (asked for {want})")
        layers: dict[str, dict] = self.manifest.get("layers", {})
        with safe_open(str(file), framework="pt", device="cpu") as f:
            keys = list(f.keys())
            for name, spec in layers.items():
                mine = {k: f.get_tensor(k) for k in keys if k.startswith(name + ".")}
                _set(module, name, restore(spec["mode"], name, spec, mine, device, dtype))
            quantized = tuple(n + "." for n in layers)
            for key in keys:
                if key.startswith(quantized):
                    continue
                owner_name, _, leaf = key.rpartition(".")
                owner = module.get_submodule(owner_name) if owner_name else module
                value = f.get_tensor(key).to(device)
                if leaf in owner._buffers:
                    owner._buffers[leaf] = value
                else:
                    owner._parameters[leaf] = nn.Parameter(value, requires_grad=False)
        for alias, original in self.manifest.get("aliases", {}).items():
            src_owner, _, src_leaf = original.rpartition(".")
            dst_owner, _, dst_leaf = alias.rpartition(".")
            src = module.get_submodule(src_owner) if src_owner else module
            dst = module.get_submodule(dst_owner) if dst_owner else module
            if src_leaf in src._parameters:
                dst._parameters[dst_leaf] = src._parameters[src_leaf]
            else:
                dst._buffers[dst_leaf] = src._buffers[src_leaf]
        self._layers = len(layers)
        return True

    def place(self, module, name, tensor, device, dtype) -> bool:
        return False

    def finish(self, module, device, dtype) -> None:
        return None

    def loaded(self, denoiser) -> None:
        module = denoiser.model
        after = module_bytes(module)
        self.report = QuantReport(
            requested=self.mode, mode=self.mode,
            device=str(denoiser.device),
            dtype=str(denoiser.dtype).removeprefix("torch."),
            bytes_before=int(self.manifest.get("bytes_before") or after), bytes_after=after,
            layers=getattr(self, "_layers", 0),
            parameters=int(self.manifest.get("parameters") or 0),
        )
        try:
            denoiser.quant_report = self.report
        except AttributeError:
            pass
