"""Dream (``Dream-org/Dream-v0-*-7B``, ``Dream-Coder-v0-*``, ``apple/DiffuCoder-7B-*``).

On disk a Dream checkpoint is a Qwen2 checkpoint (``config.json`` with ``model_type: Dream``,
``architectures: [DreamModel]``; ``model.layers.N.self_attn.{q,k,v}_proj`` with biases,
``model.norm``, ``lm_head``), run without a causal mask. Its tokenizer is Qwen2's byte-level
BPE shipped as ``vocab.json`` + ``merges.txt`` for a remote-code ``DreamTokenizer``; Lacuna reads
those files with transformers' own ``Qwen2Tokenizer`` (same regex, NFC, byte-level BPE), or
``tokenizer.json`` where a checkpoint ships one.

Dream was adapted from an autoregressive model and keeps its head's shift: the logit at row
``i - 1`` scores token ``i``. ``logits`` realigns that here, so row ``i`` scores token ``i`` like
every other family, and every canvas starts with at least one prefix token.

DreamOn (``Dream-org/DreamOn-v0-7B``) is a Dream checkpoint whose tokenizer adds
``<|expand|>`` (151667 in the released code): the model commits it where a hole needs more
room, and the end-of-text token where a position should go. A tokenizer with that token is
DreamOn; its denoiser declares ``expand_id`` and takes the ``expand`` length policy
(``infill.expand``) as its own.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..runtime import chat
from ..runtime.native import NativeDenoiser, load_family
from ..runtime.transformer import Transformer, TransformerConfig, from_qwen_config
from ..runtime.weights import ModelLoadError, load_tokenizer

FAMILY = "dream"
MASK_ID = 151666
#: DreamOn's "one mask becomes two" token (``<|expand|>``, id 151667 in DreamOn's release).
EXPAND_TOKEN = "<|expand|>"
#: Dream v0 was trained on 2048-token sequences; its config advertises Qwen2.5's 131072.
TRAINED_LENGTH = 2048


def detects(config: dict) -> bool:
    archs = config.get("architectures") or []
    return str(config.get("model_type", "")).lower() == "dream" or "DreamModel" in archs


def transformer_config(config: dict) -> TransformerConfig:
    return from_qwen_config(config, "Dream", rope_theta=10000.0, qkv_bias=True)


def rename_for(cfg: TransformerConfig):
    def rename(name: str) -> str | None:
        if name.endswith("rotary_emb.inv_freq"):
            return None  # a buffer some exporters write; recomputed from rope_theta
        if name.startswith("model."):
            return name[len("model."):]
        if name == "lm_head.weight":
            return None if cfg.tie_embeddings else name
        return name  # unknown: load_into reports it by name
    return rename


def load_dream_tokenizer(path: str | Path):
    """``tokenizer.json`` if present, else Qwen2's BPE from ``vocab.json`` + ``merges.txt``
    (the files the remote-code ``DreamTokenizer`` reads), with the added tokens of
    ``tokenizer_config.json``."""
    path = Path(path)
    if (path / "tokenizer.json").exists():
        return load_tokenizer(path)
    if not ((path / "vocab.json").exists() and (path / "merges.txt").exists()):
        raise ModelLoadError(f"{path} has neither tokenizer.json nor vocab.json + merges.txt")
    from transformers import Qwen2Tokenizer

    try:
        return Qwen2Tokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as e:  # transformers raises many types for broken files
        raise ModelLoadError(f"cannot read the Qwen2 BPE tokenizer in {path}: {e}") from None


class DreamDenoiser(NativeDenoiser):
    """``Denoiser`` over the native bidirectional Qwen2, the one-position shift realigned."""

    family = FAMILY
    shift = True
    #: What a family of Dream's kind sets: its mask when neither the config nor the
    #: tokenizer names one, and the sequence length it was trained on.
    default_mask_id, trained_length = MASK_ID, TRAINED_LENGTH

    def __init__(self, model: Transformer, tokenizer, config: dict, device: torch.device,
                 dtype: torch.dtype, instruct: bool) -> None:
        super().__init__(model, tokenizer, config, device, dtype)
        self.mask_id = int(config.get("mask_token_id") or tokenizer.mask_token_id
                           or self.default_mask_id)
        self.max_length = min(model.cfg.max_position, self.trained_length)
        self.instruct = bool(instruct and chat.has_chat_template(tokenizer))
        turn_end = chat.token_id(tokenizer, "<|im_end|>") if self.instruct else None
        self.end_ids = chat.end_ids(tokenizer, config, self.mask_id, turn_end)
        self.bos_id = next((int(i) for i in (config.get("bos_token_id"), tokenizer.bos_token_id,
                                              tokenizer.eos_token_id) if i is not None), None)
        if self.bos_id is None:
            raise ModelLoadError("Dream needs a BOS/EOS token to open the canvas (shifted logits)")
        self.prefix_ids, self.suffix_ids = self.frame()
        #: DreamOn: the token that makes one mask two (``None`` for every other Dream).
        self.expand_id = expand_token_id(tokenizer, self.mask_id)
        self.length_policy = "expand" if self.expand_id is not None else None

    def frame(self, instruction: str | None = None) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """``(prefix_ids, suffix_ids)`` around a canvas; never an empty prefix, since the
        shifted head gives position 0 no logit."""
        if self.instruct:
            prefix, suffix = chat.chat_frame(self.tokenizer,
                                             instruction or chat.DEFAULT_INSTRUCTION)
            if prefix:
                return prefix, suffix
        return (self.bos_id,), ()


def expand_token_id(tokenizer, mask_id: int) -> int | None:
    """The id of ``<|expand|>`` in a DreamOn tokenizer, else ``None``. It is made a special
    token (if the checkpoint did not): the sampler never proposes a special token, so no
    other length policy can leave it in a fill."""
    token_id = tokenizer.get_vocab().get(EXPAND_TOKEN)
    if token_id is None or token_id == mask_id:
        return None
    if token_id not in tokenizer.all_special_ids:
        try:
            tokenizer.add_special_tokens({"extra_special_tokens": [EXPAND_TOKEN]},
                                         replace_extra_special_tokens=False)
        except TypeError:  # transformers 4 names them "additional"
            tokenizer.add_special_tokens({"additional_special_tokens": [EXPAND_TOKEN]},
                                         replace_additional_special_tokens=False)
    return int(token_id)


def load(path: str | Path, config: dict, device: torch.device,
         dtype: torch.dtype) -> DreamDenoiser:
    cfg = transformer_config(config)
    tokenizer = load_dream_tokenizer(path)
    return load_family(DreamDenoiser, path, config, cfg, rename_for(cfg), tokenizer, device, dtype)
