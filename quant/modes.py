"""Quantization modes, what each costs in weight memory, and which one ``auto`` means.

``none``        the load dtype as is: fp32 on CPU, bf16 on CUDA.
``int8``        bitsandbytes LLM.int8 Linear layers (outlier threshold 6.0).
``nf4``         bitsandbytes NF4 Linear layers, double quantization, compute in the load dtype
                (bf16 on CUDA).
``torch-int8``  torch's dynamic int8 Linear layers, per output channel (CPU only).
``auto``        CUDA: ``none`` when the bf16 weights fit with headroom, else ``nf4``;
                CPU: ``CPU_AUTO``, the mode measured fastest at acceptable quality
                (``benchmarks/quantization.py``, docs/benchmarks.md).

Only the Linear layers of the network are quantized; embeddings and the output head stay in
the load dtype unless ``include_head`` asks otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from infill.models.runtime.weights import ModelLoadError

from .choices import BNB_MODES, CHOICES, MODES  # noqa: F401  (re-exported)

#: What ``auto`` picks on the CPU. Measured on a 2-core AVX2 machine (docs/benchmarks.md,
#: 135M model): torch-int8 and nf4 are faster per pass but change a third of the top-1
#: predictions; int8 keeps quality but is no faster; bf16 is 3-5x slower. So fp32.
CPU_AUTO = "none"

#: Weights fit a GPU when ``weights * HEADROOM + RESERVE`` bytes are free (activations,
#: the CUDA context and the allocator's slack need the rest).
HEADROOM = 1.2
RESERVE = 1 << 30

GiB = float(1 << 30)


class QuantError(ModelLoadError):
    """A quantization that cannot run here; the message names what would."""


@dataclass(frozen=True)
class ParamCounts:
    """Parameters of a network split by what quantization does to them."""

    #: Weights of the Linear layers that would be quantized.
    linear: int
    #: Their rows (output features): int8 keeps one scale per row.
    rows: int
    #: Everything else (embeddings, head, norms, biases), kept in the load dtype.
    other: int

    @property
    def total(self) -> int:
        return self.linear + self.other

    def weight_bytes(self, mode: str, dtype: torch.dtype) -> int:
        """Weight memory of the network in ``mode`` (quantization statistics included)."""
        size = torch.tensor([], dtype=dtype).element_size()
        other = self.other * size
        if mode == "none":
            return self.linear * size + other
        if mode == "int8":
            return self.linear + self.rows * 4 + other
        if mode == "torch-int8":
            return self.linear + self.rows * 16 + other
        if mode == "nf4":
            # 4 bits each; one absmax byte per 64 weights, plus a float per 256 blocks
            return self.linear // 2 + self.linear // 64 + self.linear // 4096 + other
        raise QuantError(f"unknown quantization mode {mode!r} (use {', '.join(CHOICES)})")


def fits(weight_bytes: int, free_bytes: int) -> bool:
    return weight_bytes * HEADROOM + RESERVE <= free_bytes


def cuda_free_bytes(device: torch.device) -> int:
    """Free memory of the GPU ``device`` right now (``torch.cuda.mem_get_info``)."""
    free, _total = torch.cuda.mem_get_info(device)
    return int(free)


def check_mode(mode: str) -> str:
    if mode not in CHOICES:
        raise QuantError(f"unknown quantization mode {mode!r} (use {', '.join(CHOICES)})")
    return mode


def resolve_mode(
    mode: str | None, device: torch.device | str, param_count: int,
    *, free_bytes: int | None = None,
) -> str:
    """The concrete mode ``mode`` means for a model of ``param_count`` parameters.

    ``auto`` on CUDA: ``none`` (bf16) when ``2 * param_count`` bytes fit with headroom in
    the GPU's free memory (``free_bytes``, else asked of the GPU), otherwise ``nf4``. ``auto``
    on any other device: ``CPU_AUTO``. Concrete modes come back unchanged.
    """
    mode = check_mode(mode or "none")
    if mode != "auto":
        return mode
    device = torch.device(device)
    if device.type != "cuda":
        return CPU_AUTO
    if free_bytes is None:
        free_bytes = cuda_free_bytes(device)
    return "none" if fits(2 * param_count, free_bytes) else "nf4"


def check_fits(counts: ParamCounts, mode: str, device: torch.device, dtype: torch.dtype,
               *, free_bytes: int | None = None) -> None:
    """Refuse before loading when the weights in ``mode`` would not fit the GPU."""
    if device.type != "cuda":
        return
    if free_bytes is None:
        free_bytes = cuda_free_bytes(device)
    need = counts.weight_bytes(mode, dtype)
    if fits(need, free_bytes):
        return
    smaller = [m for m in ("int8", "nf4")
               if m != mode and counts.weight_bytes(m, dtype) < need
               and fits(counts.weight_bytes(m, dtype), free_bytes)]
    label = "bf16" if mode == "none" and dtype == torch.bfloat16 else mode
    head = (f"the weights need {need / GiB:.1f} GiB in {label} mode "
            f"(plus {HEADROOM - 1:.0%} and {RESERVE / GiB:.0f} GiB headroom), but {device} has "
            f"{free_bytes / GiB:.1f} GiB free")
    if smaller:
        fit = smaller[0]
        raise QuantError(f"{head}: --quant {fit} would fit "
                         f"({counts.weight_bytes(fit, dtype) / GiB:.1f} GiB)")
    nf4 = counts.weight_bytes("nf4", dtype)
    raise QuantError(f"{head}; even nf4 needs {nf4 / GiB:.1f} GiB: no mode fits this GPU, "
                     "use a smaller model or --device cpu")
