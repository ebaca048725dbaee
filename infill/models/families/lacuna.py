"""The Lacuna family: a LLaMA checkpoint adapted to masked diffusion (the embedded default).

On disk it is a transformers Llama checkpoint (``config.json`` with ``model_type: llama``,
``model.*`` parameter names, ``tokenizer.json``) plus a ``lacuna`` section in the config:

    "lacuna": {"mask_token_id": 1, "end_token_ids": [0], "prefix_token_ids": [2],
               "shift_logits": true}

Optional: ``"causal_view": true`` also loads the base weights (without the adapter) as a
causal model, the expert at each hole's frontier (``two_views.TwoViewDenoiser``; the
embedded default). ``"future_bias": -6.0`` gives every attention head a learned bias on attention to
later positions, started at that value (a checkpoint adapted from a causal model starts
near-causal; see ``transformer.TransformerConfig.future_bias``).

Like Dream, it keeps the autoregressive head's one-position shift (the logit at ``i - 1``
scores token ``i``) so the pretrained head transfers; ``logits`` realigns it here, and the
canvas always starts with a prefix token so that position 0 is never a hole.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from ..embedded.two_views import CausalView, TwoViewDenoiser
from ..runtime.adapter import merge_adapter
from ..runtime.native import NativeDenoiser
from ..runtime.transformer import Transformer, TransformerConfig
from ..runtime.weights import ModelLoadError, inside, load_into, load_tokenizer

FAMILY = "lacuna"


def detects(config: dict) -> bool:
    return isinstance(config.get("lacuna"), dict)


def transformer_config(config: dict) -> TransformerConfig:
    try:
        return TransformerConfig(
            vocab_size=config["vocab_size"],
            hidden_size=config["hidden_size"],
            intermediate_size=config["intermediate_size"],
            num_layers=config["num_hidden_layers"],
            num_heads=config["num_attention_heads"],
            num_kv_heads=config.get("num_key_value_heads", config["num_attention_heads"]),
            max_position=config.get("max_position_embeddings", 2048),
            rope_theta=float(config.get("rope_theta", 10000.0)),
            rms_eps=float(config.get("rms_norm_eps", 1e-5)),
            tie_embeddings=bool(config.get("tie_word_embeddings", False)),
            future_bias=config["lacuna"].get("future_bias"),
        )
    except KeyError as e:
        raise ModelLoadError(
            f"config.json lacks {e.args[0]!r}, needed by the Llama shape"
        ) from None


class LacunaDenoiser(NativeDenoiser):
    """``Denoiser`` over a native bidirectional Llama with the shift realigned."""

    family = FAMILY

    def __init__(self, model: Transformer, tokenizer, config: dict, device: torch.device,
                 dtype: torch.dtype) -> None:
        super().__init__(model, tokenizer, config, device, dtype)
        meta = config["lacuna"]
        self.mask_id = int(meta["mask_token_id"])
        self.end_ids = frozenset(int(i) for i in meta.get("end_token_ids", []))
        self.prefix_ids = tuple(int(i) for i in meta.get("prefix_token_ids", []))
        self.suffix_ids = tuple(int(i) for i in meta.get("suffix_token_ids", []))
        self.shift = bool(meta.get("shift_logits", True))
        self.max_length = int(meta.get("max_length", model.cfg.max_position))
        if self.shift and not self.prefix_ids:
            raise ModelLoadError(
                "a shifted family needs prefix_token_ids (position 0 has no logit)"
            )


def _start_future_biases(model: Transformer, device: torch.device, dtype: torch.dtype) -> None:
    """Future biases at their configured start (``lacuna.future_bias``), so that a base
    checkpoint made without them loads; a checkpoint or adapter that has them overrides."""
    if model.cfg.future_bias is None:
        return
    for layer in model.layers:
        layer.self_attn.start_future_bias(model.cfg.future_bias, device, dtype)


def _renamer(cfg: TransformerConfig):
    def rename(name: str) -> str | None:
        if name.startswith("model."):
            return name[len("model."):]
        if name == "lm_head.weight":
            return None if cfg.tie_embeddings else name
        return None  # rotary caches and other buffers some exporters write

    return rename


def load(path: str | Path, config: dict, device: torch.device,
         dtype: torch.dtype) -> LacunaDenoiser | TwoViewDenoiser:
    cfg = transformer_config(config)
    with torch.device("meta"):
        model = Transformer(cfg)
    rename = _renamer(cfg)
    _start_future_biases(model, device, dtype)
    load_into(model, path, rename, device=device, dtype=dtype)
    adapter = config["lacuna"].get("adapter")
    if adapter:  # what a fine-tune changed, merged into the base weights (adapter.py)
        merge_adapter(model, inside(path, adapter, "config.json lacuna.adapter"), rename)
    model.eval()
    denoiser = LacunaDenoiser(model, load_tokenizer(path), config, device, dtype)
    if not config["lacuna"].get("causal_view"):
        return denoiser
    causal_cfg = dataclasses.replace(cfg, future_bias=None)
    with torch.device("meta"):
        causal = Transformer(causal_cfg)
    load_into(causal, path, _renamer(causal_cfg), device=device, dtype=dtype)
    return TwoViewDenoiser(denoiser, CausalView(causal.eval(), denoiser.tokens))
