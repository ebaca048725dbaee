"""Model families and the one door to them: ``load_denoiser(DIR)``.

Each family module offers ``FAMILY``, ``detects(config) -> bool`` and
``load(path, config, device, dtype) -> Denoiser``. Detection reads only ``config.json``, so a
user can ask which family a directory is without loading gigabytes. A llama.cpp GGUF file
(or a directory holding one and no ``config.json``) is detected by its metadata instead and
loaded by ``gguf_diffusion`` onto the same Dream and LLaDA denoisers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from ..types import Denoiser
from .families import (
    diffusion_gemma,
    dream,
    gguf_diffusion,
    lacuna,
    llada,
    llada2,
    llada_moe,
    masked_lm,
    rnd1,
    sdar,
)
from .runtime.weights import (
    ModelLoadError,
    WeightPlacer,
    check_named_files,
    pick_device,
    pick_dtype,
    placing,
    read_config,
)

#: Checked in order; the first family whose ``detects`` accepts the config wins. Lacuna comes
#: first: its config is a Llama one plus a ``lacuna`` section. Masked LMs come last: they are
#: recognised by architecture (``*ForMaskedLM``), which no diffusion family uses. LLaDA-MoE
#: comes before LLaDA: its config also says ``model_type: llada``.
FAMILIES: list[ModuleType] = [lacuna, llada_moe, llada, llada2, dream, sdar, rnd1,
                              diffusion_gemma, masked_lm]


@dataclass(frozen=True)
class Detected:
    family: str
    module: ModuleType
    config: dict


def detect_family(path: str | Path) -> Detected:
    """The family of the checkpoint at ``path``, or a ModelLoadError saying why not."""
    file = gguf_diffusion.gguf_file(path)
    if file is not None:
        config = gguf_diffusion.read_metadata(file)
        return Detected(config["gguf_architecture"], gguf_diffusion, config)
    config = read_config(path)
    for module in FAMILIES:
        if module.detects(config):
            return Detected(module.FAMILY, module, config)
    kind = config.get("model_type", "<none>")
    archs = ", ".join(config.get("architectures") or []) or "<none>"
    known = ", ".join(m.FAMILY for m in FAMILIES)
    raise ModelLoadError(
        f"{path}: model_type {kind!r} / architectures {archs} is no family Lacuna knows "
        f"(supported: {known})"
    )


def load_denoiser(
    path: str | Path, device: str | None = "auto", dtype: str | None = "auto",
    quant: WeightPlacer | None = None,
) -> Denoiser:
    """Load the checkpoint at ``path`` through its family's own module.

    ``quant``: a ``WeightPlacer`` (``quant.Quantizer``) that every ``load_into`` of this load
    hands the weights to as they stream in; it may also have ``loaded(denoiser)``, called on
    the finished denoiser (for families that load through transformers, not ``load_into``).
    """
    found = detect_family(path)
    if found.module is gguf_diffusion:
        path = gguf_diffusion.gguf_file(path)
    else:
        check_named_files(path)  # nothing the directory names may lie outside it
    dev = pick_device(device)
    with placing(quant):
        denoiser = found.module.load(Path(path), found.config, dev, pick_dtype(dtype, dev))
    if quant is not None and hasattr(quant, "loaded"):
        quant.loaded(denoiser)
    return denoiser


__all__ = ["FAMILIES", "Detected", "ModelLoadError", "detect_family", "load_denoiser"]
