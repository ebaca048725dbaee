"""Quantization: a loaded Lacuna model made smaller, and a report of what that did.

    from quant import load
    denoiser = load(model_dir, device="auto", mode="auto")   # or "none", "int8", "nf4", ...
    denoiser.quant_report.rows()                             # mode, device, memory before/after

Layers are quantized as their weights stream in (``Quantizer``, plugged into
``infill.models.load_denoiser(..., quant=...)``); ``save_quantized`` writes a quantized copy
that ``load`` reads back without quantizing again. Modes and ``auto``: ``quant.modes``.
infill never imports this package; it only offers the seam (``weights.WeightPlacer``).
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any

from .choices import CHOICES, MODES

#: The rest loads on first use (PEP 562): they import torch, the mode names do not.
_LAZY = {
    "CPU_AUTO": ".modes", "QuantError": ".modes", "resolve_mode": ".modes",
    "Quantizer": ".quantizer", "QuantReport": ".quantizer",
    "Prequantized": ".saved", "is_saved": ".saved", "save_quantized": ".saved",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'quant' has no attribute {name!r}")
    return getattr(import_module(_LAZY[name], __name__), name)


def quantizer_for(path: str | Path, mode: str | None = "auto", **options):
    """The placer for loading ``path``: a saved quantized copy loads as saved (``mode``
    must be ``auto`` or match), anything else is quantized to ``mode`` while it loads."""
    from .modes import QuantError
    from .quantizer import Quantizer
    from .saved import Prequantized, is_saved

    if is_saved(path):
        pre = Prequantized(path)
        if mode not in (None, "auto", pre.mode):
            raise QuantError(f"{path} holds a {pre.mode} model; it cannot load as {mode} "
                             f"(use --quant auto or {pre.mode}, or the unquantized source)")
        return pre
    return Quantizer(mode or "none", **options)


def load(path: str | Path, device: str | None = "auto", mode: str | None = "auto",
         dtype: str | None = "auto", **options):
    """Load ``path`` quantized to ``mode``; the denoiser's ``quant_report`` says how."""
    from infill.models import load_denoiser

    return load_denoiser(path, device=device, dtype=dtype,
                         quant=quantizer_for(path, mode, **options))


def quantize(denoiser, mode: str | None, **options):
    """Quantize an already loaded denoiser in place (the LSP worker's entry) and return it.

    Prefer ``load``: it quantizes while loading, so the unquantized model never exists whole.
    """
    import torch

    from .quantizer import Quantizer

    q = Quantizer(mode or "none", **options)
    module = denoiser.model
    device = torch.device(denoiser.device)
    dtype = denoiser.dtype or torch.float32
    from .layers import module_bytes

    before = module_bytes(module)
    q.convert(module, device, dtype, plan=True)
    q.loaded(denoiser)
    q.report.bytes_before = before
    return denoiser


__all__ = [
    "CHOICES", "CPU_AUTO", "MODES", "Prequantized", "QuantError", "QuantReport", "Quantizer",
    "is_saved", "load", "quantize", "quantizer_for", "resolve_mode", "save_quantized",
]
