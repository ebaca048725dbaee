"""LLaDA-MoE (``inclusionAI/LLaDA-MoE-7B-A1B-Base``, ``-Instruct``): LLaDA's masked diffusion
on an OLMoE-shaped mixture-of-experts body.

The checkpoint says ``model_type: llada`` (like dense LLaDA) but its ``config.json`` has
transformers-style keys (``hidden_size``, ``num_hidden_layers``...) plus the MoE ones
(``num_experts``, ``num_experts_per_tok``, ``expert_intermediate_size``, ``moe_layer_freq``)
and ``architectures: [LLaDAMoEModelLM]``; dense LLaDA has OLMo keys (``d_model``). Tensors
carry transformers' names, so the native ``Transformer`` needs only the ``model.`` prefix
dropped:

    model.embed_tokens                          -> embed_tokens
    model.layers.N.self_attn.{q,k,v,o}_proj     -> layers.N.self_attn.{q,k,v,o}_proj
    model.layers.N.self_attn.{q,k}_norm         -> per-head RMSNorm (``qk_layernorm``)
    model.layers.N.mlp.gate                     -> the router, [experts, hidden]
    model.layers.N.mlp.experts.E.{gate,up,down}_proj -> expert E's SwiGLU
    model.norm, lm_head                         -> norm, lm_head (untied)

Routing (``LLaDAMoESparseMoeBlock`` of the checkpoint's ``modeling_lladamoe.py``): softmax
over all experts, top-k, the k probabilities used as they are: the remote code sets
``norm_topk_prob = False`` whatever ``config.json`` says, and so does Lacuna. Attention is
bidirectional; mask token 156895 (``<|mask|>``); logits are not shifted: row i scores token i.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..runtime.native import load_family
from ..runtime.transformer import TransformerConfig, from_qwen_config
from ..runtime.weights import ModelLoadError, load_tokenizer
from .llada import LLaDADenoiser

FAMILY = "llada-moe"
MASK_ID = 156895
ARCHITECTURES = ("LLaDAMoEModelLM", "LLaDAMoEModel")


def detects(config: dict) -> bool:
    """``LLaDAMoEModelLM``, ``model_type: lladamoe`` (dllm's renamed copy), or ``llada`` with
    MoE keys; a dense LLaDA config (``d_model``, no experts) is not this family."""
    archs = config.get("architectures") or []
    kind = str(config.get("model_type", "")).lower()
    if any(a in ARCHITECTURES for a in archs) or kind in ("lladamoe", "llada_moe"):
        return True
    return kind == "llada" and "num_experts" in config


def _check_supported(config: dict) -> None:
    """Refuse, by name, config options no released LLaDA-MoE checkpoint uses."""
    problems = []
    if config.get("partial_rotary_factor") not in (None, -1, 1, 1.0):
        problems.append(f"partial_rotary_factor={config['partial_rotary_factor']!r}")
    if config.get("clip_qkv") is not None:
        problems.append(f"clip_qkv={config['clip_qkv']!r}")
    if config.get("attention_bias"):
        problems.append("attention_bias=True")
    if config.get("moe_router_enable_expert_bias"):
        problems.append("moe_router_enable_expert_bias=True")
    shared = config.get("shared_expert_intermediate_size")
    if shared is not None and int(shared) > 0:
        problems.append(f"shared_expert_intermediate_size={shared} (a shared expert)")
    freq = config.get("moe_layer_freq")
    if freq is not None and not all(int(f) == 1 for f in freq):
        problems.append("moe_layer_freq with dense layers (0 entries)")
    if problems:
        raise ModelLoadError(
            "LLaDA-MoE config has " + "; ".join(problems) + ": Lacuna supports the released "
            "LLaDA-MoE-7B-A1B layout (every layer MoE, softmax top-k router, no shared expert)"
        )


def transformer_config(config: dict) -> TransformerConfig:
    _check_supported(config)
    for key in ("num_experts", "num_experts_per_tok", "rope_theta"):
        if key not in config:
            raise ModelLoadError(f"LLaDA-MoE config.json lacks {key!r}")
    return from_qwen_config(
        config, "LLaDA-MoE", rope_theta=float(config["rope_theta"]),
        intermediate_key="expert_intermediate_size",
        max_position=int(config.get("max_position_embeddings", 4096)),
        rms_eps=float(config.get("rms_norm_eps", 1e-5)),
        qk_norm=bool(config.get("qk_layernorm")),
        num_experts=int(config["num_experts"]),
        experts_per_token=int(config["num_experts_per_tok"]),
        expert_intermediate_size=int(config.get("expert_intermediate_size", 0)),
        norm_topk_prob=False,  # the checkpoint's own code ignores config.norm_topk_prob
    )


def rename(name: str) -> str | None:
    """A LLaDA-MoE checkpoint name to the native Transformer's (drop ``model.``)."""
    return name.removeprefix("model.")


class LLaDAMoEDenoiser(LLaDADenoiser):
    """``Denoiser`` over the native bidirectional MoE transformer; no shift to undo."""

    family = FAMILY
    # <|endoftext|> pads the tail; the instruct model closes its turn with <|role_end|>.
    mask_token, default_mask_id = "<|mask|>", MASK_ID
    length_key = "max_position_embeddings"
    turn_end = "<|role_end|>"


def load(path: str | Path, config: dict, device: torch.device,
         dtype: torch.dtype) -> LLaDAMoEDenoiser:
    cfg = transformer_config(config)
    tokenizer = load_tokenizer(path)
    return load_family(LLaDAMoEDenoiser, path, config, cfg, rename, tokenizer, device, dtype)
