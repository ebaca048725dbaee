"""llama.cpp's diffusion GGUFs (``dream``, ``llada``, ``llada-moe``, ``rnd1``) on the native
Dream, LLaDA, LLaDA-MoE and RND1 models.

What llama.cpp's ``convert_hf_to_gguf.py`` writes for these architectures, and how it maps
back onto ``transformer.py`` (names as ``gguf.constants.MODEL_TENSORS`` lists them):

    token_embd               -> embed_tokens          output_norm -> norm
    output                   -> lm_head (absent: tied to the embeddings)
    blk.N.attn_norm          -> layers.N.input_layernorm
    blk.N.attn_{q,k,v}       -> layers.N.self_attn.{q,k,v}_proj  (weight, and bias for dream)
    blk.N.attn_output        -> layers.N.self_attn.o_proj
    blk.N.ffn_norm           -> layers.N.post_attention_layernorm
    blk.N.ffn_{gate,up,down} -> layers.N.mlp.{gate,up,down}_proj

The hyperparameters are ``{arch}.block_count``, ``.embedding_length``,
``.feed_forward_length``, ``.attention.head_count(_kv)``, ``.rope.freq_base``,
``.attention.layer_norm_rms_epsilon``, ``.context_length``. ``llada`` runs LLaMA's rope
(``LLAMA_ROPE_TYPE_NORM``), so the converter permuted its q/k rows the way it does for
``llama``: undone here. ``dream`` runs NEOX rope, stored as transformers has it. The shift
is ``diffusion.shift_logits`` (absent: llama.cpp's ``diffusion-cli`` default, shifted for
dream, not for llada); the mask token is ``tokenizer.ggml.mask_token_id``; the tokenizer is
rebuilt from ``tokenizer.ggml.*`` (``gguf_reader``).

``llada-moe`` (``LLaDAMoEModel`` in the converter, ``src/models/llada-moe.cpp``) adds:

    blk.N.attn_{q,k}_norm    -> layers.N.self_attn.{q,k}_norm    (per head: [head_dim])
    blk.N.ffn_gate_inp       -> layers.N.mlp.gate                (the router, [experts, hidden])
    blk.N.ffn_{gate,up,down}_exps -> layers.N.mlp.experts.E.{gate,up,down}_proj

The converter stacks the experts' HF weights with ``torch.stack(dim=0)``, so each ``_exps``
tensor is ``[experts, out, in]`` in PyTorch's order (ggml's ``{in, out, experts}``, what
``llada-moe.cpp`` creates): expert E is row E of the stack, no transpose. The hyperparameters
add ``.expert_count``, ``.expert_used_count`` and ``.expert_feed_forward_length`` (absent:
``feed_forward_length / expert_used_count``, llama.cpp's fallback). llama.cpp runs it with
NEOX rope (no q/k permutation, and the converter applies none), softmax gating, the top-k
weights not renormalised and not scaled (fixed in ``llada-moe.cpp`` whatever the metadata
says), bidirectional attention; the converter writes ``diffusion.shift_logits: false`` and
mask 156895.

``rnd1`` (``RND1Model(Qwen2MoeModel)`` in the converter, ``src/models/rnd1.cpp``) has the
same tensors as ``llada-moe`` (Qwen3-MoE's), NEOX rope, softmax gating with the top-k
renormalised (``build_moe_ffn``'s ``norm_w``), bidirectional attention, the head shifted
(the converter writes no ``diffusion.shift_logits``; diffusion-cli's default is shifted), the
mask from ``tokenizer.ggml.mask_token_id`` (151669, a padded row past the vocabulary).

Tensors are dequantized one at a time while they stream into the model (or into a
quantizer), so no full float32 copy of the network exists at any point.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import torch

from ..runtime import chat, tensor_cache
from ..runtime.gguf_reader import (
    CONTROL,
    UNUSED,
    USER_DEFINED,
    byte_level_bpe,
    field,
    native_name,
    open_gguf,
    stream_tensors,
    vocabulary,
)
from ..runtime.native import load_network
from ..runtime.transformer import TransformerConfig
from ..runtime.weights import ModelLoadError
from . import dream, llada, llada_moe, rnd1

#: GGUF architectures this module loads, with the family and shift llama.cpp defaults to.
ARCHS = {"dream": (dream, True), "llada": (llada, False), "llada-moe": (llada_moe, False),
         "rnd1": (rnd1, True)}
#: Mixtures of experts, with whether llama.cpp renormalises the top-k router weights
#: (``llada-moe.cpp`` never does; ``rnd1`` runs Qwen3-MoE's graph, which does).
MOE_ARCHS = {"llada-moe": False, "rnd1": True}
#: The denoiser class of each family.
DENOISERS = {dream: dream.DreamDenoiser, llada: llada.LLaDADenoiser,
             llada_moe: llada_moe.LLaDAMoEDenoiser, rnd1: rnd1.RND1Denoiser}

def gguf_file(path: str | Path) -> Path | None:
    """The GGUF file ``path`` names: itself, or the one ``.gguf`` in a directory without a
    ``config.json``; ``None`` when ``path`` is no GGUF model."""
    path = Path(path)
    if path.is_file():
        return path if path.suffix.lower() == ".gguf" else None
    if not path.is_dir() or (path / "config.json").exists():
        return None
    found = sorted(p for p in path.iterdir() if p.suffix.lower() == ".gguf" and p.is_file())
    if len(found) > 1:
        raise ModelLoadError(f"{path} holds {len(found)} GGUF files "
                             f"({', '.join(p.name for p in found)}): name one of them")
    return found[0] if found else None


def read_metadata(file: Path) -> dict:
    """The GGUF's hyperparameters and token ids as a family config (no tensor is read)."""
    r = open_gguf(file)
    arch = str(field(r, "general.architecture"))
    if arch not in ARCHS:
        raise ModelLoadError(f"{file}: GGUF architecture {arch!r} is not a diffusion model "
                             f"Lacuna loads (supported: {', '.join(ARCHS)})")
    _, default_shift = ARCHS[arch]

    def hp(key: str, default=None):
        return field(r, f"{arch}.{key}", default)

    names = {t.name for t in r.tensors}
    heads = int(hp("attention.head_count"))
    shift = field(r, "diffusion.shift_logits", None)
    head_dim, value_dim = hp("attention.key_length", None), hp("attention.value_length", None)
    if value_dim is not None and head_dim is not None and int(value_dim) != int(head_dim):
        raise ModelLoadError(f"{file}: key length {head_dim} differs from value length "
                             f"{value_dim}; Lacuna's attention has one head width")
    moe = {}
    if arch in MOE_ARCHS:
        used = int(hp("expert_used_count"))
        expert_ff = hp("expert_feed_forward_length", None)
        if expert_ff is None:  # llama.cpp: n_ff_exp = n_ff / n_expert_used
            expert_ff = int(hp("feed_forward_length")) // used
        moe = {"num_experts": int(hp("expert_count")), "num_experts_per_tok": used,
               "expert_intermediate_size": int(expert_ff),
               "qk_layernorm": "blk.0.attn_q_norm.weight" in names}
        intermediate = int(expert_ff)
    else:
        intermediate = int(hp("feed_forward_length"))
    config = {
        "gguf_architecture": arch,
        "_name_or_path": str(field(r, "general.name", "") or ""),
        "num_hidden_layers": int(hp("block_count")),
        "hidden_size": int(hp("embedding_length")),
        "intermediate_size": intermediate,
        **moe,
        "num_attention_heads": heads,
        "num_key_value_heads": int(hp("attention.head_count_kv", heads)),
        "max_position_embeddings": int(hp("context_length", 4096)),
        "rope_theta": float(hp("rope.freq_base", 10000.0)),
        "rms_norm_eps": float(hp("attention.layer_norm_rms_epsilon", 1e-6)),
        "rope_dim": hp("rope.dimension_count"),
        "head_dim": None if head_dim is None else int(head_dim),
        "rope_scaling": hp("rope.scaling.type"),
        "qkv_bias": "blk.0.attn_q.bias" in names,
        "tie_word_embeddings": "output.weight" not in names,
        "shift_logits": default_shift if shift is None else bool(shift),
        "file_type": field(r, "general.file_type", None),
        "tensor_types": dict(Counter(t.tensor_type.name for t in r.tensors)),
    }
    for key, meta in (("bos_token_id", "bos"), ("eos_token_id", "eos"),
                      ("pad_token_id", "padding"), ("mask_token_id", "mask"),
                      ("unk_token_id", "unknown")):
        value = field(r, f"tokenizer.ggml.{meta}_token_id", None)
        if value is not None:
            config[key] = int(value)
    if arch == "llada":
        config["max_sequence_length"] = config["max_position_embeddings"]
    return config


def transformer_config(config: dict, vocab_size: int) -> TransformerConfig:
    if config["rope_scaling"] not in (None, "none"):
        raise ModelLoadError(f"GGUF sets rope scaling {config['rope_scaling']!r}; Lacuna "
                             "supports plain RoPE (the released checkpoints)")
    heads, hidden = config["num_attention_heads"], config["hidden_size"]
    head_dim = config.get("head_dim") or hidden // heads
    if config["rope_dim"] not in (None, head_dim):
        raise ModelLoadError(f"GGUF rotates {config['rope_dim']} of {head_dim} head "
                             "dimensions; Lacuna supports full-head RoPE")
    moe = {}
    if config.get("num_experts"):  # softmax gating; renormalised as llama.cpp's graph does
        moe = {"num_experts": config["num_experts"],
               "experts_per_token": config["num_experts_per_tok"],
               "expert_intermediate_size": config["expert_intermediate_size"],
               "norm_topk_prob": MOE_ARCHS[config["gguf_architecture"]]}
    return TransformerConfig(
        vocab_size=vocab_size, hidden_size=hidden,
        intermediate_size=config["intermediate_size"], num_layers=config["num_hidden_layers"],
        num_heads=heads, num_kv_heads=config["num_key_value_heads"],
        max_position=config["max_position_embeddings"], rope_theta=config["rope_theta"],
        rms_eps=config["rms_norm_eps"], qkv_bias=config["qkv_bias"],
        tie_embeddings=config["tie_word_embeddings"],
        head_size=None if head_dim == hidden // heads else head_dim,
        qk_norm=bool(config.get("qk_layernorm")), **moe,
    )


def build_tokenizer(reader, config: dict):
    """A fast tokenizer from ``tokenizer.ggml.*`` (or the embedded ``tokenizer.json``)."""
    from tokenizers import AddedToken, Tokenizer
    from transformers import PreTrainedTokenizerFast

    embedded = field(reader, "tokenizer.huggingface.json", None)
    model = field(reader, "tokenizer.ggml.model", None)
    if embedded:
        tok = Tokenizer.from_str(str(embedded))
        tokens = [tok.id_to_token(i) for i in range(tok.get_vocab_size())]
    elif model == "gpt2":
        tokens, kinds, merges = vocabulary(reader)
        while kinds and kinds[-1] == UNUSED:  # the converter's [PAD{i}] up to the head's rows
            tokens, kinds = tokens[:-1], kinds[:-1]
        tok = byte_level_bpe(tokens, merges, str(field(reader, "tokenizer.ggml.pre", "default")))
        tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                                for t, k in zip(tokens, kinds, strict=True) if k == CONTROL])
        tok.add_tokens([AddedToken(t, special=False, normalized=False)
                        for t, k in zip(tokens, kinds, strict=True) if k == USER_DEFINED])
    else:
        raise ModelLoadError(f"GGUF tokenizer model {model!r} is not supported (Dream, "
                             "LLaDA, LLaDA-MoE and RND1 GGUFs use 'gpt2', byte-level BPE)")

    def name(key: str) -> str | None:
        i = config.get(key)
        return tokens[i] if i is not None and 0 <= i < len(tokens) else None

    out = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=name("bos_token_id"), eos_token=name("eos_token_id"),
        pad_token=name("pad_token_id") or name("eos_token_id"),
        unk_token=name("unk_token_id"), mask_token=name("mask_token_id"),
        model_max_length=config["max_position_embeddings"],
    )
    template = field(reader, "tokenizer.chat_template", None)
    if template:
        out.chat_template = str(template)
    return out


def describe_source(file: Path, config: dict) -> str:
    """One line for ``lacuna doctor``: the file's quant type and its tensors' types."""
    from gguf import LlamaFileType

    ft = config.get("file_type")
    try:
        kind = LlamaFileType(int(ft)).name.removeprefix("MOSTLY_") if ft is not None else "?"
    except ValueError:
        kind = f"file type {ft}"
    types = ", ".join(f"{k} x{n}" for k, n in sorted(config["tensor_types"].items(),
                                                      key=lambda kv: -kv[1]))
    return f"GGUF {kind} ({types}), {file.name}"


def load(file: str | Path, config: dict, device: torch.device, dtype: torch.dtype):
    """A Dream, LLaDA or LLaDA-MoE denoiser from a GGUF file whose metadata ``config`` has
    read."""
    file = Path(file)
    arch = config["gguf_architecture"]
    family, _ = ARCHS[arch]
    reader = open_gguf(file)
    embed = next((t for t in reader.tensors if t.name == "token_embd.weight"), None)
    if embed is None:
        raise ModelLoadError(f"{file} has no token_embd.weight tensor")
    cfg = transformer_config(config, int(embed.shape[-1]))
    def convert():
        return stream_tensors(reader, arch, cfg.num_heads, cfg.num_kv_heads, cfg.num_experts)

    tensors, cached = convert(), None
    if tensor_cache.enabled() and set(config["tensor_types"]) - {"F32"}:
        cached = tensor_cache.entry(file, dtype)
        size = sum(int(t.n_elements) for t in reader.tensors)
        tensors = tensor_cache.cached_tensors(cached, convert, dtype, size)
    model = load_network(file, cfg, native_name, device, dtype, tensors=tensors)
    tokenizer = build_tokenizer(reader, config)
    den = DENOISERS[family](model, tokenizer, config, device, dtype,
              instruct=chat.looks_instruct(file, config))
    den.shift = config["shift_logits"]  # what the file says, over the family's default
    den.source_format = describe_source(file, config)
    if cached is not None and tensor_cache.complete(cached):
        den.source_format += f"; converted once, read from {cached}"
    return den
