"""One quantized Linear layer at a time: build it from a weight, save it, rebuild it.

Every builder takes the weight on the CPU (as it comes out of the checkpoint) and puts only
the quantized form on the device, so the unquantized copy never exceeds one layer.
"""

from __future__ import annotations

import logging
import warnings

import torch
from torch import nn

from .modes import QuantError


class _DropNoise(logging.Filter):
    """bitsandbytes on CPU logs a cast warning on every int8 matmul, and at import that an
    optional kernel package is missing; neither tells the user anything they can act on."""

    NOISE = ("inputs will be cast from", "Failed to load CPU gemm_4bit_forward")

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not any(n in msg for n in self.NOISE)


_FILTER = _DropNoise()
for _name in ("bitsandbytes.autograd._functions", "bitsandbytes.backends.cpu.ops"):
    logging.getLogger(_name).addFilter(_FILTER)


def bnb(mode: str):
    """The bitsandbytes module, or a QuantError naming what to do without it."""
    try:
        import bitsandbytes
    except ImportError as e:
        raise QuantError(
            f"quantization {mode!r} needs bitsandbytes, which is not installed ({e}): "
            "pip install bitsandbytes, or use --quant none (or torch-int8 on the CPU)"
        ) from None
    return bitsandbytes


def kind_of(layer: nn.Module) -> str | None:
    """The mode a layer was quantized in, or None for an ordinary layer."""
    name = type(layer).__name__
    if name == "Linear4bit" or name == "LinearNF4":
        return "nf4"
    if name == "Linear8bitLt":
        return "int8"
    if isinstance(layer, _dynamic_linear_type()):
        return "torch-int8"
    return None


def _dynamic_linear_type() -> type:
    from torch.ao.nn.quantized.dynamic import Linear

    return Linear


def _bias(bias: torch.Tensor | None, device: torch.device, dtype: torch.dtype):
    if bias is None:
        return None
    return nn.Parameter(bias.to(device=device, dtype=dtype), requires_grad=False)


def build(mode: str, weight: torch.Tensor, bias: torch.Tensor | None, device: torch.device,
          dtype: torch.dtype, *, threshold: float = 6.0) -> nn.Module:
    """A ``mode`` layer computing ``x @ weight.T + bias`` on ``device`` in ``dtype``."""
    out_f, in_f = weight.shape
    if mode == "nf4":
        lib = bnb(mode)
        layer = lib.nn.Linear4bit(in_f, out_f, bias=bias is not None, compute_dtype=dtype,
                                  compress_statistics=True, quant_type="nf4", device="meta")
        param = lib.nn.Params4bit(weight.to(dtype).contiguous(), requires_grad=False,
                                  compress_statistics=True, quant_type="nf4", module=layer)
        layer.weight = param.to(device)  # quantizes here, on the device
    elif mode == "int8":
        lib = bnb(mode)
        layer = lib.nn.Linear8bitLt(in_f, out_f, bias=bias is not None, has_fp16_weights=False,
                                    threshold=threshold, device="meta")
        param = lib.nn.Int8Params(weight.contiguous(), requires_grad=False,
                                  has_fp16_weights=False)
        layer.weight = param.to(device)  # quantizes here, on the device
    elif mode == "torch-int8":
        w = weight.float()
        scales = (w.abs().amax(dim=1) / 127.0).clamp(min=1e-12)
        q = torch.clamp(torch.round(w / scales[:, None]), -127, 127).to(torch.int8)
        return _dynamic(q, scales, bias, device)
    else:
        raise QuantError(f"cannot build a {mode!r} layer")
    if bias is not None:
        layer.bias = _bias(bias, device, dtype)
    return layer.eval()  # inference only (bitsandbytes picks its kernels by this)


def _dynamic(q: torch.Tensor, scales: torch.Tensor, bias: torch.Tensor | None,
             device: torch.device) -> nn.Module:
    if device.type != "cpu":
        raise QuantError("torch-int8 runs on the CPU only: use int8 or nf4 on CUDA")
    out_f, in_f = q.shape
    zeros = torch.zeros(out_f, dtype=torch.long)
    with warnings.catch_warnings():  # "quantized tensor creation functions are deprecated"
        warnings.simplefilter("ignore")
        qw = torch._make_per_channel_quantized_tensor(q, scales.double(), zeros, 0)
        layer = _dynamic_linear_type()(in_f, out_f, bias_=bias is not None, dtype=torch.qint8)
        layer.set_weight_bias(qw, None if bias is None else bias.float())
    return layer.eval()


def serialize(name: str, layer: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors that rebuild ``layer`` (a quantized one) without re-quantizing."""
    kind = kind_of(layer)
    out: dict[str, torch.Tensor] = {}
    if kind == "torch-int8":
        qw, bias = layer._weight_bias()
        out[f"{name}.weight"] = qw.int_repr().contiguous()
        out[f"{name}.weight_scales"] = qw.q_per_channel_scales().float().contiguous()
        if bias is not None:
            out[f"{name}.bias"] = bias.detach().contiguous()
        return out
    state = layer.state_dict()
    if kind == "int8":
        # after a forward pass bitsandbytes moves the row scales from the weight to the state
        scb = getattr(layer.weight, "SCB", None)
        if scb is None:
            scb = layer.state.SCB
        state["SCB"] = scb
        state.pop("weight_format", None)
    for key, value in state.items():
        out[f"{name}.{key}"] = value.detach().cpu().contiguous()
    return out


def restore(kind: str, name: str, spec: dict, tensors: dict[str, torch.Tensor],
            device: torch.device, dtype: torch.dtype) -> nn.Module:
    """Rebuild a layer ``serialize`` wrote (``tensors`` holds its keys, prefixed by name)."""
    in_f, out_f, has_bias = spec["in"], spec["out"], spec["bias"]
    bias = tensors.get(f"{name}.bias") if has_bias else None
    if kind == "torch-int8":
        return _dynamic(tensors[f"{name}.weight"], tensors[f"{name}.weight_scales"], bias,
                        device)
    lib = bnb(kind)
    if kind == "nf4":
        layer = lib.nn.Linear4bit(in_f, out_f, bias=has_bias, compute_dtype=dtype,
                                  quant_type="nf4", device="meta")
        prefix = f"{name}.weight."
        stats = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        layer.weight = lib.nn.Params4bit.from_prequantized(
            tensors[f"{name}.weight"], stats, device=device, module=layer)
    elif kind == "int8":
        layer = lib.nn.Linear8bitLt(in_f, out_f, bias=has_bias, has_fp16_weights=False,
                                    threshold=spec.get("threshold", 6.0), device="meta")
        param = lib.nn.Int8Params(tensors[f"{name}.weight"].to(device), requires_grad=False,
                                  has_fp16_weights=False)
        param.CB = param.data
        param.SCB = tensors[f"{name}.SCB"].to(device)
        layer.weight = param
    else:
        raise QuantError(f"a saved layer {name!r} has unknown mode {kind!r}")
    if bias is not None:
        layer.bias = _bias(bias, device, dtype)
    return layer.eval()  # inference only (bitsandbytes picks its kernels by this)


def module_bytes(module: nn.Module) -> int:
    """Bytes the weights of ``module`` occupy, quantization statistics included."""
    seen: set[int] = set()
    total = 0

    def add(t: torch.Tensor | None) -> None:
        nonlocal total
        if t is None or not isinstance(t, torch.Tensor) or t.device.type == "meta":
            return
        key = t.data_ptr() if t.numel() else id(t)
        if key in seen:
            return
        seen.add(key)
        total += t.numel() * t.element_size()

    for sub in module.modules():
        kind = kind_of(sub)
        if kind == "torch-int8":
            qw, bias = sub._weight_bias()
            total += qw.numel() + qw.q_per_channel_scales().numel() * 16
            add(bias)
            continue
        for t in [*sub._parameters.values(), *sub._buffers.values()]:
            add(t)
        if kind == "nf4":
            qs = sub.weight.quant_state
            if qs is not None:
                add(qs.absmax)
                add(qs.code)
                if qs.state2 is not None:
                    add(qs.state2.absmax)
                    add(qs.state2.code)
        elif kind == "int8":
            add(getattr(sub.weight, "SCB", None))
            add(sub.state.SCB)
    return total
