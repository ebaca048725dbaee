"""LLaDA 2.x (``inclusionAI/LLaDA2.0-mini``, ``-flash``, ``LLaDA2.1-*``): block diffusion on
a mixture of experts.

On disk (``LLaDA2MoeModelLM``, ``model_type: llada2_moe``, the Ling/Bailing-MoE-V2 layout):

    model.word_embeddings                      -> embed_tokens
    model.layers.N.attention.query_key_value   -> self_attn.{q,k,v}_proj (rows: the query
                                                  heads, then the key heads, then the values)
    model.layers.N.attention.dense             -> self_attn.o_proj
    model.layers.N.attention.{query,key}_layernorm -> self_attn.{q,k}_norm (per head)
    model.layers.N.mlp.gate.{weight,expert_bias}   -> mlp.gate (sigmoid router)
    model.layers.N.mlp.experts.E.*_proj, mlp.shared_experts.*_proj -> the same names
    model.layers.N.mlp.*_proj                  (the first ``first_k_dense_replace`` layers)
    model.norm, lm_head

The router scores each expert with a sigmoid, adds ``expert_bias`` for the choice only,
keeps the ``topk_group`` best of ``n_group`` expert groups (a group scores the sum of its two
best experts), takes the top ``num_experts_per_tok`` there, renormalises their unbiased
scores (when more than one) and scales them by ``routed_scaling_factor``; the shared expert
(``moe_intermediate_size * num_shared_experts`` wide) runs on every token. RoPE turns only
the first ``partial_rotary_factor`` of each head (NEOX halves). This is transformers'
Glm4Moe computation, which the tests check the native one against.

Generation (the checkpoint's ``generate``) runs block-causally in blocks of 32 counted from
position 0, the logits unshifted, mask ``<|mask|>`` 156895; the instruct checkpoints close a
turn with ``<|role_end|>``. The tokenizer has no fill-in-the-middle tokens, so a suffix after
the hole reaches only the hole's last block: prefix completion (ghost text) is the native use,
and the family's denoiser says so (``lacuna doctor``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch

from ..runtime.native import load_family
from ..runtime.transformer import TransformerConfig, from_qwen_config
from ..runtime.weights import ModelLoadError, iter_tensors, load_tokenizer
from .sdar import SDARDenoiser

FAMILY = "llada2"
MASK_ID = 156895
BLOCK_SIZE = 32
ARCHITECTURES = ("LLaDA2MoeModelLM",)

_ATTENTION = {"dense": "o_proj", "query_layernorm": "q_norm", "key_layernorm": "k_norm",
              "q_proj": "q_proj", "k_proj": "k_proj", "v_proj": "v_proj"}


def detects(config: dict) -> bool:
    archs = config.get("architectures") or []
    kind = str(config.get("model_type", "")).lower()
    return kind == "llada2_moe" or any(a in ARCHITECTURES for a in archs)


def _check_supported(config: dict) -> None:
    """Refuse, by name, options no released LLaDA 2.x checkpoint uses."""
    problems = []
    if config.get("use_bias"):
        problems.append("use_bias=True (an attention output bias)")
    if str(config.get("score_function") or "sigmoid") != "sigmoid":
        problems.append(f"score_function={config['score_function']!r}")
    if config.get("use_rmsnorm") is False:
        problems.append("use_rmsnorm=False")
    if config.get("use_linear_attention") or config.get("linear_attention_layers"):
        problems.append("linear attention layers")
    if problems:
        raise ModelLoadError("LLaDA 2.x config has " + "; ".join(problems) + ": Lacuna runs "
                             "the released layout (sigmoid router, RMSNorm, softmax attention)")


def transformer_config(config: dict) -> TransformerConfig:
    _check_supported(config)
    for key in ("num_experts", "num_experts_per_tok", "moe_intermediate_size",
                "num_attention_heads", "hidden_size"):
        if key not in config:
            raise ModelLoadError(f"LLaDA 2.x config.json lacks {key!r}")
    head = int(config.get("head_dim") or int(config["hidden_size"])
               // int(config["num_attention_heads"]))
    rotary = int(config.get("rotary_dim")
                 or head * float(config.get("partial_rotary_factor") or 1.0))
    top_k = int(config["num_experts_per_tok"])
    expert = int(config["moe_intermediate_size"])
    return from_qwen_config(
        config, "LLaDA 2.x", rope_theta=600000.0,
        head_size=head, rotary_dim=rotary if rotary < head else None,
        qkv_bias=bool(config.get("use_qkv_bias")), qk_norm=bool(config.get("use_qk_norm")),
        num_experts=int(config["num_experts"]), experts_per_token=top_k,
        expert_intermediate_size=expert,
        norm_topk_prob=top_k > 1,  # the checkpoint's gate renormalises whenever k > 1
        router="sigmoid", router_bias=config.get("moe_router_enable_expert_bias", True),
        expert_groups=int(config.get("n_group") or 1),
        groups_per_token=int(config.get("topk_group") or 1),
        routed_scale=float(config.get("routed_scaling_factor") or 1.0),
        shared_expert_intermediate_size=expert * int(config.get("num_shared_experts") or 0),
        dense_layers=int(config.get("first_k_dense_replace") or 0),
    )


def rename(name: str) -> str | None:
    """A LLaDA 2.x checkpoint name (after ``split_fused``) to the native Transformer's."""
    if name == "model.word_embeddings.weight":
        return "embed_tokens.weight"
    name = name.removeprefix("model.")
    parts = name.split(".")
    if len(parts) == 5 and parts[2] == "attention" and parts[3] in _ATTENTION:
        return f"layers.{parts[1]}.self_attn.{_ATTENTION[parts[3]]}.{parts[4]}"
    return name  # norms, mlp.*, norm, lm_head: the native names already


def split_fused(path: str | Path, cfg: TransformerConfig
                ) -> Iterator[tuple[str, torch.Tensor]]:
    """The checkpoint's tensors, each fused ``query_key_value`` split into the query, key
    and value projections (rows: ``heads``, then ``kv_heads``, then ``kv_heads`` heads)."""
    sizes = [cfg.num_heads * cfg.head_dim, cfg.num_kv_heads * cfg.head_dim,
             cfg.num_kv_heads * cfg.head_dim]
    for name, tensor in iter_tensors(path):
        head, fused, leaf = name.rpartition(".query_key_value.")
        if not fused:
            yield name, tensor
            continue
        if tensor.shape[0] != sum(sizes):
            raise ModelLoadError(f"checkpoint tensor {name!r} has {tensor.shape[0]} rows; the "
                                 f"config implies {sum(sizes)} (queries, keys, values)")
        for part, piece in zip(("q_proj", "k_proj", "v_proj"), tensor.split(sizes), strict=True):
            yield f"{head}.{part}.{leaf}", piece


class LLaDA2Denoiser(SDARDenoiser):
    """``Denoiser`` over the native MoE transformer run block-causally in blocks of 32; no
    FIM tokens, so the canvas runs as it stands (prefix completion)."""

    family = FAMILY
    default_mask_id, default_block_size = MASK_ID, BLOCK_SIZE
    turn_end = "<|role_end|>"
    fim_tokens = ()

    @property
    def infill_support(self) -> str:
        return ("prefix completion only: the tokenizer has no fill-in-the-middle tokens, so "
                "the suffix is seen only by the hole's last block")


def load(path: str | Path, config: dict, device: torch.device,
         dtype: torch.dtype) -> LLaDA2Denoiser:
    cfg = transformer_config(config)
    tokenizer = load_tokenizer(path)
    return load_family(LLaDA2Denoiser, path, config, cfg, rename, tokenizer, device, dtype,
                       tensors=split_fused(path, cfg))
