"""RND1 (``radicalnumerics/RND1-Base-0910``): Qwen3-30B-A3B turned into a masked diffusion
model by continual pretraining.

On disk an RND1 checkpoint is a Qwen3-MoE checkpoint (``config.json`` with ``model_type:
rnd1``, ``architectures: [RND1LM]``; ``model.layers.N.self_attn.{q,k,v,o}_proj`` without
biases, per-head ``q_norm``/``k_norm``, ``mlp.gate`` and ``mlp.experts.E.{gate,up,down}_proj``
in every layer, ``model.norm``, ``lm_head``) with Qwen3's tokenizer. It runs without a causal
mask; a softmax router picks ``num_experts_per_tok`` experts and renormalises their
probabilities (``norm_topk_prob``). Like Dream it keeps its autoregressive head's shift: the
logit at row ``i - 1`` scores token ``i`` (the release's sampler shifts its predictions by
one), realigned by the Dream denoiser it shares. The mask is 151669, the first row past
Qwen3's tokenizer (``mask_token_id``); the release's sampler opens no BOS, but a shifted head
gives position 0 no logit, so the canvas opens with the config's BOS (``<|endoftext|>``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..runtime.native import load_family
from ..runtime.transformer import TransformerConfig, from_qwen_config
from ..runtime.weights import ModelLoadError
from .dream import DreamDenoiser, load_dream_tokenizer, rename_for

FAMILY = "rnd1"
MASK_ID = 151669
#: Not stated in the release; the length its report's continual pretraining is read to use.
TRAINED_LENGTH = 4096


def detects(config: dict) -> bool:
    archs = config.get("architectures") or []
    return str(config.get("model_type", "")).lower() == "rnd1" or "RND1LM" in archs


def transformer_config(config: dict) -> TransformerConfig:
    if config.get("mlp_only_layers") or int(config.get("decoder_sparse_step") or 1) != 1:
        raise ModelLoadError("RND1 config has dense layers (mlp_only_layers / "
                             "decoder_sparse_step); Lacuna runs the released all-MoE layout")
    if config.get("attention_bias"):
        raise ModelLoadError("RND1 config sets attention_bias; the release has no biases")
    for key in ("num_experts", "num_experts_per_tok", "moe_intermediate_size"):
        if key not in config:
            raise ModelLoadError(f"RND1 config.json lacks {key!r}")
    head = int(config["head_dim"]) if config.get("head_dim") else None
    return from_qwen_config(
        config, "RND1", rope_theta=1000000.0, head_size=head, qk_norm=True,
        num_experts=int(config["num_experts"]),
        experts_per_token=int(config["num_experts_per_tok"]),
        expert_intermediate_size=int(config["moe_intermediate_size"]),
        norm_topk_prob=bool(config.get("norm_topk_prob", True)),
    )


class RND1Denoiser(DreamDenoiser):
    """Dream's denoiser (bidirectional, shifted, ChatML framing) over the native Qwen3-MoE."""

    family = FAMILY
    default_mask_id, trained_length = MASK_ID, TRAINED_LENGTH


def load(path: str | Path, config: dict, device: torch.device,
         dtype: torch.dtype) -> RND1Denoiser:
    cfg = transformer_config(config)
    tokenizer = load_dream_tokenizer(path)  # tokenizer.json, else vocab.json + merges.txt
    return load_family(RND1Denoiser, path, config, cfg, rename_for(cfg), tokenizer, device,
                       dtype)
