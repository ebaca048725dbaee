"""``Quantizer``: quantizes each Linear layer the moment its weight streams in.

It implements infill's ``WeightPlacer`` seam (``load_denoiser(..., quant=Quantizer(mode))``):

* ``begin`` sees the network on the meta device: it counts parameters, resolves ``auto``,
  checks that the weights fit the GPU (naming the mode that would) and that bitsandbytes is
  there, all before a byte is read;
* ``place`` takes the weight (and bias) of each target Linear as it arrives, on the CPU,
  and swaps in a quantized layer built on the device: one layer is the most that is ever
  held unquantized, so an 8B model quantizes within its final memory;
* ``loaded`` converts what did not come through ``load_into`` (families loaded by
  transformers) and writes the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .layers import build, kind_of, module_bytes
from .modes import BNB_MODES, ParamCounts, QuantError, check_fits, check_mode, resolve_mode

#: Linear layers never quantized unless ``include_head``: the output head (its errors land
#: straight on the logits) and, by name, the heads of the families loaded by transformers.
HEAD_NAMES = ("lm_head", "ff_out", "output", "cls", "decoder")


@dataclass
class QuantReport:
    requested: str
    mode: str
    device: str
    dtype: str
    #: Weight memory unquantized in ``dtype`` (computed from the parameter counts).
    bytes_before: int
    #: Weight memory as loaded (measured, quantization statistics included).
    bytes_after: int
    #: Linear layers quantized.
    layers: int
    #: Parameters of the unquantized network.
    parameters: int = 0

    def rows(self) -> list[tuple[str, str]]:
        mode = self.mode if self.requested == self.mode else f"{self.mode} (from {self.requested})"
        return [
            ("quant", mode),
            ("device", self.device),
            ("memory before", f"{self.bytes_before / 2**20:,.1f} MiB of weights in {self.dtype}"),
            ("memory after", f"{self.bytes_after / 2**20:,.1f} MiB "
                             f"({self.bytes_after / max(self.bytes_before, 1):.0%})"),
            ("quant layers", f"{self.layers} Linear layers"),
        ]


def _is_head(name: str) -> bool:
    leaf = name.rpartition(".")[2]
    return leaf in HEAD_NAMES or name in HEAD_NAMES


def targets(module: nn.Module, include_head: bool = False) -> dict[str, nn.Linear]:
    """The Linear layers a quantizer replaces, by name."""
    return {
        name: sub for name, sub in module.named_modules()
        if isinstance(sub, nn.Linear) and kind_of(sub) is None
        and (include_head or not _is_head(name))
    }


def count(module: nn.Module, chosen: dict[str, nn.Linear]) -> ParamCounts:
    """Split the (deduplicated) parameters of ``module`` into quantized and kept ones."""
    linear = rows = 0
    quantized: set[int] = set()
    for lin in chosen.values():
        linear += lin.weight.numel()
        rows += lin.weight.shape[0]
        quantized.add(id(lin.weight))
    other = sum(p.numel() for p in module.parameters() if id(p) not in quantized)
    return ParamCounts(linear=linear, rows=rows, other=other)


def _set(module: nn.Module, name: str, layer: nn.Module) -> None:
    owner, _, leaf = name.rpartition(".")
    setattr(module.get_submodule(owner) if owner else module, leaf, layer)


class Quantizer:
    """Quantize while loading: ``load_denoiser(path, quant=Quantizer("nf4"))``.

    After the load, ``report`` says what happened (``QuantReport``).
    """

    def __init__(self, mode: str = "auto", *, include_head: bool = False,
                 threshold: float = 6.0, free_bytes: int | None = None) -> None:
        self.requested = check_mode(mode or "none")
        self.include_head = include_head
        self.threshold = threshold
        #: GPU free memory to plan with (``None``: ask the GPU); tests set it.
        self.free_bytes = free_bytes
        self.mode: str | None = None
        self.report: QuantReport | None = None
        self._targets: dict[str, tuple[bool, ...]] = {}
        self._pending: dict[str, dict[str, torch.Tensor]] = {}
        self._tied_heads: list[str] = []
        self._before = 0
        self._params = 0
        self._layers = 0
        self._after_load = False

    # -- planning ------------------------------------------------------------------------
    def plan(self, module: nn.Module, device: torch.device, dtype: torch.dtype) -> str:
        """Resolve the mode for ``module`` (meta or loaded) and refuse what cannot work."""
        chosen = targets(module, self.include_head)
        counts = count(module, chosen)
        mode = resolve_mode(self.requested, device, counts.total, free_bytes=self.free_bytes)
        if mode == "torch-int8":
            if device.type != "cpu":
                raise QuantError("torch-int8 runs on the CPU only: use int8 or nf4 on CUDA")
            if dtype != torch.float32:
                raise QuantError("torch-int8 computes in float32: load with dtype float32")
        check_fits(counts, mode, device, dtype, free_bytes=self.free_bytes)
        if mode in BNB_MODES:
            from .layers import bnb

            bnb(mode)
        if mode == "none":
            chosen = {}
        self.mode = mode
        self._params = counts.total
        self._before = ParamCounts(0, 0, counts.total).weight_bytes("none", dtype)
        embeds = {id(m.weight) for m in module.modules() if isinstance(m, nn.Embedding)}
        self._tied_heads = [n for n, lin in chosen.items() if id(lin.weight) in embeds]
        self._targets = {n: (lin.bias is not None,) for n, lin in chosen.items()
                         if n not in self._tied_heads}
        return mode

    # -- the WeightPlacer seam -------------------------------------------------------------
    def begin(self, module: nn.Module, path: Path, device: torch.device,
              dtype: torch.dtype) -> bool:
        self.plan(module, device, dtype)
        # A checkpoint whose family merges an adapter into the weights after load_into
        # (the embedded default) is quantized after that merge, in ``loaded``.
        self._after_load = _merges_adapter(path)
        return False

    def place(self, module: nn.Module, name: str, tensor: torch.Tensor,
              device: torch.device, dtype: torch.dtype) -> bool:
        owner, _, leaf = name.rpartition(".")
        spec = self._targets.get(owner)
        if (spec is None or leaf not in ("weight", "bias") or self.mode in (None, "none")
                or self._after_load):
            return False
        parts = self._pending.setdefault(owner, {})
        parts[leaf] = tensor
        if "weight" in parts and (not spec[0] or "bias" in parts):
            del self._pending[owner]
            _set(module, owner, build(self.mode, parts["weight"], parts.get("bias"), device,
                                      dtype, threshold=self.threshold))
            self._layers += 1
        return True

    def finish(self, module: nn.Module, device: torch.device, dtype: torch.dtype) -> None:
        if self._pending:
            names = ", ".join(f"{n}.bias" for n in sorted(self._pending))
            raise QuantError(f"the checkpoint lacks {names}")

    def loaded(self, denoiser) -> None:
        """Finish a load: convert what ``load_into`` did not see, then write the report."""
        module = getattr(denoiser, "model", None)
        if not isinstance(module, nn.Module):
            raise QuantError(f"cannot quantize a {type(denoiser).__name__}: it has no .model")
        device = torch.device(getattr(denoiser, "device", None) or _device_of(module))
        dtype = getattr(denoiser, "dtype", None) or torch.float32
        if self.mode is None:  # loaded by transformers, not load_into: convert in place
            self.convert(module, device, dtype, plan=True)
        elif self._after_load:
            self.convert(module, device, dtype, plan=False,
                         names=[*self._targets, *self._tied_heads])
        elif self._tied_heads:
            self.convert(module, device, dtype, plan=False, names=self._tied_heads)
        self.report = QuantReport(
            requested=self.requested, mode=self.mode or "none", device=str(device),
            dtype=str(dtype).removeprefix("torch."), bytes_before=self._before,
            bytes_after=module_bytes(module), layers=self._layers, parameters=self._params,
        )
        try:
            denoiser.quant_report = self.report
        except AttributeError:
            pass

    # -- an already loaded module ------------------------------------------------------------
    def convert(self, module: nn.Module, device: torch.device, dtype: torch.dtype, *,
                plan: bool = True, names: list[str] | None = None) -> None:
        """Replace the target Linear layers of a loaded ``module`` (the unquantized copy is
        already there, so this saves memory afterwards, not at its peak)."""
        if plan:
            self.plan(module, device, dtype)
            names = [*self._targets, *self._tied_heads]
        if self.mode in (None, "none"):
            return
        for name in names or []:
            lin = module.get_submodule(name)
            weight = lin.weight.detach().to("cpu")
            bias = None if lin.bias is None else lin.bias.detach().to("cpu")
            _set(module, name, build(self.mode, weight, bias, device, dtype,
                                     threshold=self.threshold))
            del lin, weight
            self._layers += 1


def _merges_adapter(path: Path | None) -> bool:
    """Whether the checkpoint at ``path`` has weights merged in after ``load_into``."""
    import json

    try:
        config = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, TypeError, ValueError):
        return False
    section = config.get("lacuna") if isinstance(config, dict) else None
    return isinstance(section, dict) and bool(section.get("adapter"))


def _device_of(module: nn.Module) -> torch.device:
    for p in module.parameters():
        return p.device
    return torch.device("cpu")

