"""What every family's ``Denoiser`` holds once loaded, whatever network it wraps."""

from __future__ import annotations

import torch


class LoadedDenoiser:
    """The network, its tokenizer and ``config.json``, and where it runs (``device``,
    ``dtype``: what ``infill.types.Denoiser`` promises the sampler); a family adds its
    conventions (mask, ends, frame) on top."""

    family = "loaded"

    def __init__(self, model, tokenizer, config: dict, device: torch.device,
                 dtype: torch.dtype) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        self.device = device
        self.dtype = dtype
