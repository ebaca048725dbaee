"""DiffusionGemma (``google/diffusiongemma-*``) through transformers' own classes.

DiffusionGemma is not a masked diffusion LM. ``DiffusionGemmaForBlockDiffusion`` is an
encoder-decoder sharing one set of weights: a causal *encoder* turns the prompt into a KV
cache, and a bidirectional *decoder* denoises a *canvas* of ``canvas_length`` tokens that
attends to that cache and to itself. Noise is uniform over the vocabulary (a fresh canvas is
random tokens), not a mask token. Text is generated canvas after canvas, left to right.

How it is fitted to the ``Denoiser`` interface (row i scores token i, holes are ``mask_id``):

- the canvas the engine builds is split at its first hole: everything before goes through the
  encoder (cached while it does not change, so each denoising step costs one decoder pass);
  the holes and the text after them form the decoder's canvas, which sees that right context
  bidirectionally. Right context beyond the trained ``canvas_length`` is cut off;
- ``mask_id`` is only a placeholder the adapter replaces with random tokens before the decoder
  sees the canvas, exactly the noise the model was trained to remove (fixed seed: the same
  request gives the same text);
- rows of the encoded prefix are not scored (they are context, never holes);
- self-conditioning (the previous step's logits fed back) is not used: every call is scored
  as a first denoising step, which keeps ``logits`` a pure function of ``ids``.

So infilling works for holes with left context of any length and right context up to one
canvas; multiple holes work when they share one canvas span.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..runtime import chat
from ..runtime.loaded import LoadedDenoiser
from ..runtime.weights import ModelLoadError, load_tokenizer, transformers_placement

FAMILY = "diffusion-gemma"
ARCH = "DiffusionGemmaForBlockDiffusion"
#: Planner window: the encoder takes long prompts, the canvas is capped separately.
WINDOW = 4096


def detects(config: dict) -> bool:
    archs = config.get("architectures") or []
    return str(config.get("model_type", "")) == "diffusion_gemma" or ARCH in archs


def model_class():
    import transformers

    cls = getattr(transformers, ARCH, None)
    if cls is None:
        raise ModelLoadError(
            f"DiffusionGemma needs transformers' {ARCH}, which the installed transformers "
            f"{transformers.__version__} lacks (it arrived in transformers 5; upgrade it)"
        )
    return cls


class DiffusionGemmaDenoiser(LoadedDenoiser):
    family = FAMILY

    def __init__(self, model, tokenizer, config: dict, device: torch.device,
                 dtype: torch.dtype, instruct: bool) -> None:
        super().__init__(model, tokenizer, config, device, dtype)
        text = config.get("text_config") or {}
        self.vocab_size = int(text.get("vocab_size") or model.config.text_config.vocab_size)
        self.canvas_length = int(config.get("canvas_length") or 256)
        mask = tokenizer.mask_token_id
        if mask is None:
            mask = chat.token_id(tokenizer, "<mask>")
        if mask is None:
            mask = tokenizer.pad_token_id
        if mask is None:
            raise ModelLoadError("DiffusionGemma tokenizer has no <mask> or <pad> to mark holes")
        self.mask_id = int(mask)
        eos = text.get("eos_token_id", tokenizer.eos_token_id)
        eos = eos if isinstance(eos, list) else [eos]
        ends = {*eos, tokenizer.pad_token_id, chat.token_id(tokenizer, "<end_of_turn>")}
        self.end_ids = frozenset(int(i) for i in ends if i is not None and i != self.mask_id)
        self.max_length = min(int(text.get("max_position_embeddings") or WINDOW), WINDOW)
        self.instruct = bool(instruct and chat.has_chat_template(tokenizer))
        self.prefix_ids, self.suffix_ids = self.frame()
        self._cached: tuple[tuple, object] | None = None

    def frame(self, instruction: str | None = None) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """``(prefix_ids, suffix_ids)``: the chat turn for ``-it`` checkpoints, else ``<bos>``
        (the encoder needs at least one token before the first hole)."""
        if self.instruct:
            prefix, suffix = chat.chat_frame(self.tokenizer,
                                             instruction or chat.DEFAULT_INSTRUCTION)
            if prefix:
                return prefix, suffix
        bos = self.tokenizer.bos_token_id
        return ((int(bos),) if bos is not None else ()), ()

    def logits(self, ids: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        with torch.inference_mode():
            masked = (ids == self.mask_id).any(dim=0).nonzero().flatten()
            wanted = positions if positions is not None else masked
            if len(wanted) == 0 and len(masked) == 0:
                raise ValueError("DiffusionGemma scores holes only: no mask in the canvas")
            start = int(torch.cat([masked, wanted]).min())
            last = int(torch.cat([masked, wanted]).max())
            if start < 1:
                raise ValueError("DiffusionGemma needs at least one token before the first hole")
            end = min(ids.shape[1], max(last + 1, start + self.canvas_length))
            canvas = ids[:, start:end].clone()
            holes = canvas == self.mask_id
            gen = torch.Generator(device="cpu").manual_seed(int(canvas.shape[1]))
            noise = torch.randint(0, self.vocab_size, canvas.shape, generator=gen)
            canvas[holes] = noise.to(canvas.device)[holes]
            scored = self._decode(ids[:, :start], canvas)
            if positions is not None:
                return scored[:, positions - start]
            out = torch.full((ids.shape[0], ids.shape[1], scored.shape[-1]), -1e4,
                             device=scored.device)
            out.scatter_(2, ids[..., None], 0.0)  # unscored context rows: their own token
            out[:, start:end] = scored
            return out

    def _decode(self, prefix: torch.Tensor, canvas: torch.Tensor) -> torch.Tensor:
        """Logits for ``canvas`` after ``prefix``. The encoder's KV cache of the prefix is
        kept while the prefix is unchanged (the decoder only reads it), so a denoising step
        costs one decoder pass."""
        key = (tuple(prefix.shape), tuple(prefix.flatten().tolist()))
        if self._cached is not None and self._cached[0] == key:
            out = self.model(cache=self._cached[1], decoder_input_ids=canvas)
        else:
            out = self.model(input_ids=prefix, decoder_input_ids=canvas)
            self._cached = (key, out.cache)
        return out.logits.float()  # soft-capped by the model, as in its own sampler


def load(path: str | Path, config: dict, device: torch.device,
         dtype: torch.dtype) -> DiffusionGemmaDenoiser:
    cls = model_class()
    try:
        model = cls.from_pretrained(str(path), local_files_only=True, trust_remote_code=False,
                                    dtype=dtype, **transformers_placement(device))
    except Exception as e:  # transformers raises many types for a broken directory
        raise ModelLoadError(f"cannot load DiffusionGemma from {path}: {e}") from None
    model.to(device).eval()
    return DiffusionGemmaDenoiser(model, load_tokenizer(path), config, device, dtype,
                                  instruct=chat.looks_instruct(path, config))
