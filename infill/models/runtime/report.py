"""What a loaded denoiser is, in numbers a user can check (``lacuna doctor``)."""

from __future__ import annotations

import torch

from ...types import Denoiser


def describe(denoiser: Denoiser) -> dict[str, object]:
    """Family, parameter count (and, for mixtures of experts, the parameters active per
    token), dtype, device and weight memory of a loaded denoiser."""
    module = getattr(denoiser, "model", None)
    params = weight_bytes = 0
    if isinstance(module, torch.nn.Module):
        seen: set[int] = set()
        for t in [*module.parameters(), *module.buffers()]:
            if id(t) in seen:
                continue
            seen.add(id(t))
            weight_bytes += t.numel() * t.element_size()
            if t.is_floating_point() or t.dtype in (torch.uint8, torch.int8):
                params += t.numel()
    out = {
        "family": denoiser.family,
        "parameters": params,
        "dtype": str(denoiser.dtype).removeprefix("torch."),
        "device": str(denoiser.device),
        "weight_bytes": weight_bytes,
        "max_length": denoiser.max_length,
        "mask_id": denoiser.mask_id,
    }
    idle = sum(m.idle_parameters() for m in module.modules() if hasattr(m, "idle_parameters")
               ) if isinstance(module, torch.nn.Module) else 0
    if idle:  # mixture of experts: what one token runs (all but the unchosen experts)
        quant_report = getattr(denoiser, "quant_report", None)
        total = getattr(quant_report, "parameters", 0) or params  # quantized: unpacked count
        out["active_parameters"] = total - idle
    if getattr(denoiser, "source_format", None):  # e.g. a GGUF file's quant type
        out["format"] = denoiser.source_format
    # What the family can and cannot do, in its own words (SDAR: block-causal attention, the
    # suffix only as fill-in-the-middle context).
    if getattr(denoiser, "attention", None):
        out["attention"] = str(denoiser.attention)
    if getattr(denoiser, "infill_support", None):
        out["infill"] = str(denoiser.infill_support)
    biases = [m.future_bias for m in module.modules() if getattr(m, "future_bias", None)
              is not None] if isinstance(module, torch.nn.Module) else []
    if biases:  # attention annealed from causal: how far towards bidirectional it got
        b = torch.cat([x.detach().float().flatten() for x in biases])
        out["future_bias"] = {"mean": round(float(b.mean()), 3), "min": round(float(b.min()), 3),
                              "max": round(float(b.max()), 3)}
    return out
