"""LLaDA (``GSAI-ML/LLaDA-8B-Base``, ``-Instruct``, LLaDA 1.5): a bidirectional LLaMA.

The checkpoint is OLMo-shaped on disk (``config.json`` with ``model_type: llada``,
``d_model``, ``n_heads``, ``mlp_hidden_size``...; tensors named ``model.transformer.*``) but the
network is exactly the LLaMA block of ``transformer.py`` run without a causal mask:

    model.transformer.wte                 -> embed_tokens
    model.transformer.blocks.N.attn_norm  -> layers.N.input_layernorm
    model.transformer.blocks.N.{q,k,v}_proj -> layers.N.self_attn.{q,k,v}_proj
    model.transformer.blocks.N.attn_out   -> layers.N.self_attn.o_proj
    model.transformer.blocks.N.ff_norm    -> layers.N.post_attention_layernorm
    model.transformer.blocks.N.ff_proj    -> layers.N.mlp.gate_proj   (the SiLU branch)
    model.transformer.blocks.N.up_proj    -> layers.N.mlp.up_proj
    model.transformer.blocks.N.ff_out     -> layers.N.mlp.down_proj
    model.transformer.ln_f                -> norm
    model.transformer.ff_out              -> lm_head  (absent when ``weight_tying``)

Mask token 126336 (``<|mdm_mask|>``); logits are not shifted: row i scores token i.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from ..runtime import chat
from ..runtime.native import NativeDenoiser, load_family
from ..runtime.transformer import Transformer, TransformerConfig
from ..runtime.weights import ModelLoadError, load_tokenizer

FAMILY = "llada"
MASK_ID = 126336


def detects(config: dict) -> bool:
    """``model_type: llada`` / ``LLaDAModelLM``, but not LLaDA-MoE (same ``model_type``,
    experts in the config; ``llada_moe`` takes it)."""
    from . import llada_moe

    if llada_moe.detects(config):
        return False
    archs = config.get("architectures") or []
    return str(config.get("model_type", "")).lower() == "llada" or "LLaDAModelLM" in archs


def _check_supported(config: dict) -> None:
    """LLaDA's config can describe OLMo variants no released checkpoint uses; refuse them."""
    wanted = {
        "block_type": ("llama",), "layer_norm_type": ("rms",), "activation_type": ("silu",),
        "alibi": (False, None), "rope": (True, None), "include_bias": (False, None),
        "attention_layer_norm": (False, None), "bias_for_layer_norm": (False, None),
        "block_group_size": (1, None), "layer_norm_with_affine": (True, None),
    }
    for key, allowed in wanted.items():
        if config.get(key) not in allowed:
            raise ModelLoadError(
                f"LLaDA config has {key}={config.get(key)!r}; Lacuna supports {allowed[0]!r} "
                "(the released LLaDA checkpoints)"
            )


def transformer_config(config: dict) -> TransformerConfig:
    _check_supported(config)
    try:
        hidden = int(config["d_model"])
        heads = int(config["n_heads"])
        if config.get("multi_query_attention"):
            kv_heads = 1
        else:
            kv_heads = int(config.get("n_kv_heads") or heads)
        mlp = config.get("mlp_hidden_size") or int(config.get("mlp_ratio", 4)) * hidden
        return TransformerConfig(
            vocab_size=int(config.get("embedding_size") or config["vocab_size"]),
            hidden_size=hidden,
            intermediate_size=int(mlp),
            num_layers=int(config["n_layers"]),
            num_heads=heads,
            num_kv_heads=kv_heads,
            max_position=int(config.get("max_sequence_length", 4096)),
            rope_theta=float(config.get("rope_theta", 10000.0)),
            rms_eps=float(config.get("rms_norm_eps", 1e-5)),
            qkv_bias=bool(config.get("include_qkv_bias", False)),
            tie_embeddings=bool(config.get("weight_tying", False)),
            embed_scale=hidden**0.5 if config.get("input_emb_norm") else 1.0,
            logit_scale=hidden**-0.5 if config.get("scale_logits") else 1.0,
            rope_position_scale=max(1.0, float(config.get("rope_scaling_factor") or 1.0)),
        )
    except KeyError as e:
        raise ModelLoadError(f"LLaDA config.json lacks {e.args[0]!r}") from None


_BLOCK = re.compile(r"model\.transformer\.blocks\.(\d+)\.(\w+)\.(weight|bias)")
_BLOCK_NAMES = {
    "attn_norm": "input_layernorm",
    "q_proj": "self_attn.q_proj",
    "k_proj": "self_attn.k_proj",
    "v_proj": "self_attn.v_proj",
    "attn_out": "self_attn.o_proj",
    "ff_norm": "post_attention_layernorm",
    "ff_proj": "mlp.gate_proj",
    "up_proj": "mlp.up_proj",
    "ff_out": "mlp.down_proj",
}
_TOP_NAMES = {
    "model.transformer.wte.weight": "embed_tokens.weight",
    "model.transformer.ln_f.weight": "norm.weight",
    "model.transformer.ff_out.weight": "lm_head.weight",
}


def rename(name: str) -> str | None:
    """A LLaDA checkpoint name to the native Transformer's, ``None`` for what it lacks."""
    if name in _TOP_NAMES:
        return _TOP_NAMES[name]
    m = _BLOCK.fullmatch(name)
    if m and m.group(2) in _BLOCK_NAMES:
        return f"layers.{m.group(1)}.{_BLOCK_NAMES[m.group(2)]}.{m.group(3)}"
    if m and m.group(2) == "att_proj":
        raise ModelLoadError(
            "this LLaDA checkpoint fuses q/k/v into att_proj (OLMo's sequential block); "
            "Lacuna supports the llama block of the released checkpoints"
        )
    return name  # unknown: load_into reports it by name


class LLaDADenoiser(NativeDenoiser):
    """``Denoiser`` over the native bidirectional LLaMA; no shift to undo."""

    family = FAMILY
    #: The mask token's name and id where the config names none, the config key of the
    #: trained length, and the token that ends an instruct turn: what LLaDA-MoE changes.
    mask_token, default_mask_id = "<|mdm_mask|>", MASK_ID
    length_key = "max_sequence_length"
    turn_end = "<|eot_id|>"

    def __init__(self, model: Transformer, tokenizer, config: dict, device: torch.device,
                 dtype: torch.dtype, instruct: bool) -> None:
        super().__init__(model, tokenizer, config, device, dtype)
        self.mask_id = int(config.get("mask_token_id")
                           or chat.token_id(tokenizer, self.mask_token) or self.default_mask_id)
        self.max_length = int(config.get(self.length_key, model.cfg.max_position))
        eos = config.get("eos_token_id", tokenizer.eos_token_id)
        eot = chat.token_id(tokenizer, self.turn_end)
        # Pretraining and SFT pad the tail with the end of text; the instruct model also
        # ends its turn: both mean "nothing here" inside an auto-length hole.
        self.end_ids = frozenset(int(i) for i in (eos, eot) if i is not None)
        self.instruct = bool(instruct and chat.has_chat_template(tokenizer))
        self.prefix_ids, self.suffix_ids = self.frame()

    def frame(self, instruction: str | None = None) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """``(prefix_ids, suffix_ids)`` around a canvas: the chat turn for instruct
        checkpoints, the tokenizer's BOS (if it has one) for base ones."""
        if self.instruct:
            return chat.chat_frame(self.tokenizer, instruction or chat.DEFAULT_INSTRUCTION)
        bos = self.tokenizer.bos_token_id
        return ((int(bos),) if bos is not None else ()), ()


def load(path: str | Path, config: dict, device: torch.device,
         dtype: torch.dtype) -> LLaDADenoiser:
    cfg = transformer_config(config)
    tokenizer = load_tokenizer(path)
    return load_family(LLaDADenoiser, path, config, cfg, rename, tokenizer, device, dtype)
