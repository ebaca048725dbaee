"""Tiny random checkpoints in each real family's exact on-disk format, for tests and demos.

Each writer produces what the public checkpoint ships, shrunk: the same ``config.json`` keys,
the same tensor names (sharded with ``model.safetensors.index.json`` where the real one is),
and a real tokenizer file of the same kind (``tokenizer.json``; Dream's ``vocab.json`` +
``merges.txt``; BERT's WordPiece). Weights are random: fills show the machinery, not sense.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors.torch import save_file

from infill.models.embedded.tiny import TOY_CORPUS
from infill.models.runtime.transformer import Transformer, TransformerConfig

LLADA_SPECIALS = ["<|startoftext|>", "<|endoftext|>", "<|mdm_mask|>", "<|start_header_id|>",
                  "<|end_header_id|>", "<|eot_id|>"]
# LLaDA-8B-Instruct's template (Llama-3 style headers, BOS on the first turn).
LLADA_CHAT_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% endif %}"
)
DREAM_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|beginoftext|>", "<|mask|>"]
# Qwen2.5's ChatML template as Dream ships it (system turn by default).
DREAM_CHAT_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant."
    "<|im_end|>\n{% endif %}{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _bpe(specials: list[str], vocab_size: int = 320, specials_first: bool = True):
    """A byte-level BPE ``tokenizers.Tokenizer`` trained on the toy corpus."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials if specials_first else [],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(TOY_CORPUS * 4, trainer=trainer)
    return tok


def _round_up(n: int, to: int = 64) -> int:
    return int(math.ceil(n / to) * to)


def _write_sharded(path: Path, state: dict[str, torch.Tensor], shards: int) -> None:
    """``model-0000k-of-0000n.safetensors`` plus ``model.safetensors.index.json``."""
    names = sorted(state)
    per = math.ceil(len(names) / shards)
    weight_map: dict[str, str] = {}
    total = 0
    for k in range(shards):
        part = names[k * per:(k + 1) * per]
        fname = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
        save_file({n: state[n].contiguous() for n in part}, str(path / fname),
                  metadata={"format": "pt"})
        for n in part:
            weight_map[n] = fname
            total += state[n].numel() * state[n].element_size()
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (path / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")


def _random_transformer(cfg: TransformerConfig, seed: int) -> Transformer:
    torch.manual_seed(seed)
    model = Transformer(cfg)
    for name, p in model.named_parameters():
        if "norm" in name:
            torch.nn.init.normal_(p, mean=1.0, std=0.1)  # not all ones: catches swapped norms
        else:
            torch.nn.init.normal_(p, std=0.05)
    for name, p in model.named_parameters():  # MoE routers that prefer some experts clearly
        if name.endswith("mlp.gate.weight"):
            torch.nn.init.normal_(p, std=0.5)
    return model


def _transformers_names(model: Transformer) -> dict[str, torch.Tensor]:
    """The native model's tensors under transformers' Llama/Qwen names (``model.`` prefix)."""
    return {(k if k == "lm_head.weight" else f"model.{k}"): v
            for k, v in model.state_dict().items()}


def _write_json(path: Path, name: str, data: dict) -> None:
    (path / name).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- LLaDA


def build_tiny_llada(path: str | Path, *, seed: int = 0, instruct: bool = False,
                     shards: int = 2) -> Path:
    """LLaDA-8B's format: OLMo-style config and ``model.transformer.*`` names, shards."""
    from transformers import PreTrainedTokenizerFast

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=_bpe(LLADA_SPECIALS, vocab_size=300), bos_token="<|startoftext|>",
        eos_token="<|endoftext|>", pad_token="<|endoftext|>", mask_token="<|mdm_mask|>",
    )
    if instruct:
        tok.chat_template = LLADA_CHAT_TEMPLATE
    tok.save_pretrained(str(path))
    vocab = tok.get_vocab()
    d_model, heads, layers, mlp = 64, 4, 2, 96
    config = {
        "activation_type": "silu", "alibi": False, "alibi_bias_max": 8.0,
        "architectures": ["LLaDAModelLM"], "attention_dropout": 0.0,
        "attention_layer_norm": False, "attention_layer_norm_with_affine": True,
        "auto_map": {"AutoConfig": "configuration_llada.LLaDAConfig",
                     "AutoModelForCausalLM": "modeling_llada.LLaDAModelLM",
                     "AutoModel": "modeling_llada.LLaDAModelLM"},
        "bias_for_layer_norm": False, "block_group_size": 1, "block_type": "llama",
        "d_model": d_model, "embedding_dropout": 0.0, "embedding_size": _round_up(len(tok)),
        "eos_token_id": vocab["<|endoftext|>"], "flash_attention": False,
        "include_bias": False, "include_qkv_bias": False, "init_device": "meta",
        "init_fn": "mitchell", "init_std": 0.02, "input_emb_norm": False,
        "layer_norm_type": "rms", "layer_norm_with_affine": True,
        "mask_token_id": vocab["<|mdm_mask|>"], "max_sequence_length": 512,
        "mlp_hidden_size": mlp, "mlp_ratio": 4, "model_type": "llada",
        "multi_query_attention": None, "n_heads": heads, "n_kv_heads": heads,
        "n_layers": layers, "pad_token_id": vocab["<|endoftext|>"], "precision": "amp_bf16",
        "residual_dropout": 0.0, "rms_norm_eps": 1e-05, "rope": True,
        "rope_full_precision": True, "rope_theta": 500000.0, "scale_logits": False,
        "transformers_version": "4.46.3", "use_cache": False,
        "vocab_size": _round_up(len(tok)), "weight_tying": False,
    }
    cfg = TransformerConfig(
        vocab_size=config["embedding_size"], hidden_size=d_model, intermediate_size=mlp,
        num_layers=layers, num_heads=heads, num_kv_heads=heads, max_position=512,
        rope_theta=500000.0,
    )
    model = _random_transformer(cfg, seed)
    _write_sharded(path, llada_state_dict(model), shards)
    _write_json(path, "config.json", config)
    return path


def llada_state_dict(model: Transformer) -> dict[str, torch.Tensor]:
    """The native model's tensors under LLaDA's checkpoint names."""
    block = {"input_layernorm": "attn_norm", "self_attn.q_proj": "q_proj",
             "self_attn.k_proj": "k_proj", "self_attn.v_proj": "v_proj",
             "self_attn.o_proj": "attn_out", "post_attention_layernorm": "ff_norm",
             "mlp.gate_proj": "ff_proj", "mlp.up_proj": "up_proj", "mlp.down_proj": "ff_out"}
    top = {"embed_tokens.weight": "model.transformer.wte.weight",
           "norm.weight": "model.transformer.ln_f.weight",
           "lm_head.weight": "model.transformer.ff_out.weight"}
    out = {}
    for name, t in model.state_dict().items():
        if name in top:
            out[top[name]] = t
            continue
        _, i, rest = name.split(".", 2)
        module, leaf = rest.rsplit(".", 1)
        out[f"model.transformer.blocks.{i}.{block[module]}.{leaf}"] = t
    return out


# --------------------------------------------------------------------------- LLaDA-MoE

LLADA_MOE_SPECIALS = ["<|startoftext|>", "<|endoftext|>", "<|mask|>", "<role>", "</role>",
                      "<|role_end|>"]
# The Ling/Bailing turn format LLaDA-MoE-Instruct is prompted with in dInfer-based scripts:
# <role>HUMAN</role>...<|role_end|><role>ASSISTANT</role>. A stand-in, not the shipped file.
LLADA_MOE_CHAT_TEMPLATE = (
    "{% for message in messages %}<role>"
    "{{ 'HUMAN' if message['role'] == 'user' else message['role'] | upper }}</role>"
    "{{ message['content'] }}<|role_end|>{% endfor %}"
    "{% if add_generation_prompt %}<role>ASSISTANT</role>{% endif %}"
)


def build_tiny_llada_moe(path: str | Path, *, seed: int = 0, instruct: bool = False,
                         shards: int = 2, experts: int = 8, top_k: int = 2) -> Path:
    """LLaDA-MoE-7B-A1B's format: ``model_type: llada`` with transformers-style and MoE
    config keys (``LLaDAMoEConfig``'s full set), ``model.layers.N.mlp.experts.E.*`` names,
    per-head ``q_norm``/``k_norm``, shards."""
    from transformers import PreTrainedTokenizerFast

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=_bpe(LLADA_MOE_SPECIALS, vocab_size=300),
        bos_token="<|startoftext|>", eos_token="<|endoftext|>", pad_token="<|endoftext|>",
        mask_token="<|mask|>",
    )
    if instruct:
        tok.chat_template = LLADA_MOE_CHAT_TEMPLATE
    tok.save_pretrained(str(path))
    vocab = tok.get_vocab()
    hidden, heads, kv, layers, expert_mlp = 64, 4, 2, 2, 32
    config = {
        "architectures": ["LLaDAMoEModelLM"], "attention_bias": False,
        "attention_dropout": 0.0,
        "auto_map": {"AutoConfig": "configuration_lladamoe.LLaDAConfig",
                     "AutoModel": "modeling_lladamoe.LLaDAMoEModelLM",
                     "AutoModelForCausalLM": "modeling_lladamoe.LLaDAMoEModelLM"},
        "bos_token_id": vocab["<|startoftext|>"], "clip_qkv": None,
        "dense_intermediate_size": 4 * hidden, "eos_token_id": vocab["<|endoftext|>"],
        "expert_intermediate_size": expert_mlp, "hidden_act": "silu", "hidden_size": hidden,
        "initializer_range": 0.02, "mask_token_id": vocab["<|mask|>"],
        "max_position_embeddings": 512, "model_type": "llada",
        "moe_layer_freq": [1] * layers, "moe_router_enable_expert_bias": False,
        "moe_router_score_function": "softmax", "norm_topk_prob": False,
        "num_attention_heads": heads, "num_experts": experts, "num_experts_per_tok": top_k,
        "num_hidden_layers": layers, "num_key_value_heads": kv,
        "output_router_logits": False, "pad_token_id": vocab["<|endoftext|>"],
        "partial_rotary_factor": 1, "qk_layernorm": True, "rms_norm_eps": 1e-05,
        "rope_scaling": None, "rope_theta": 50000, "routed_scaling_factor": 1,
        "router_aux_loss_coef": 0.01, "router_num_group": None, "router_topk_group": None,
        "shared_expert_intermediate_size": None, "tie_word_embeddings": False,
        "torch_dtype": "bfloat16", "transformers_version": "4.46.2", "use_cache": False,
        "vocab_size": _round_up(len(tok)),
    }
    cfg = TransformerConfig(
        vocab_size=config["vocab_size"], hidden_size=hidden, intermediate_size=expert_mlp,
        num_layers=layers, num_heads=heads, num_kv_heads=kv, max_position=512,
        rope_theta=50000.0, qk_norm=True, num_experts=experts, experts_per_token=top_k,
        expert_intermediate_size=expert_mlp,
    )
    model = _random_transformer(cfg, seed)
    _write_sharded(path, _transformers_names(model), shards)
    _write_json(path, "config.json", config)
    return path


# --------------------------------------------------------------------------- LLaDA 2.x


def llada2_state_dict(model: Transformer) -> dict[str, torch.Tensor]:
    """The native model's tensors under LLaDA 2.x's names: q/k/v fused into
    ``attention.query_key_value`` (query rows, then key rows, then value rows)."""
    out: dict[str, torch.Tensor] = {}
    state = model.state_dict()
    for i in range(len(model.layers)):
        at = f"layers.{i}.self_attn."
        out[f"model.layers.{i}.attention.query_key_value.weight"] = torch.cat(
            [state.pop(at + f"{x}_proj.weight") for x in "qkv"])
        out[f"model.layers.{i}.attention.dense.weight"] = state.pop(at + "o_proj.weight")
        out[f"model.layers.{i}.attention.query_layernorm.weight"] = state.pop(at + "q_norm.weight")
        out[f"model.layers.{i}.attention.key_layernorm.weight"] = state.pop(at + "k_norm.weight")
    out["model.word_embeddings.weight"] = state.pop("embed_tokens.weight")
    out["lm_head.weight"] = state.pop("lm_head.weight")
    out.update({f"model.{k}": v for k, v in state.items()})
    return out


def build_tiny_llada2(path: str | Path, *, seed: int = 0, instruct: bool = False,
                      shards: int = 2, hidden: int = 64, layers: int = 3) -> Path:
    """LLaDA2.0-mini's format (``LLaDA2MoeModelLM``, ``model_type: llada2_moe``): fused
    ``query_key_value``, ``dense``, per-head ``query_layernorm``/``key_layernorm``, a sigmoid
    router with ``expert_bias`` over grouped experts, a shared expert, the first layer dense,
    half-head rotary; Bailing's tokenizer specials, shards. ``hidden``/``layers`` make a
    larger one for timing (heads of 16, experts a quarter of ``hidden`` wide)."""
    from transformers import PreTrainedTokenizerFast

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=_bpe(LLADA_MOE_SPECIALS, vocab_size=300),
        eos_token="<|endoftext|>", pad_token="<|endoftext|>", mask_token="<|mask|>",
    )
    if instruct:
        tok.chat_template = LLADA_MOE_CHAT_TEMPLATE
    tok.save_pretrained(str(path))
    vocab = tok.get_vocab()
    head_dim, experts, expert_mlp, dense_mlp = 16, 8, hidden // 4, hidden * 3 // 2
    heads = hidden // head_dim
    kv = heads // 2
    config = {
        "architectures": ["LLaDA2MoeModelLM"], "attention_dropout": 0.0,
        "auto_map": {"AutoConfig": "configuration_llada2_moe.LLaDA2MoeConfig",
                     "AutoModel": "modeling_llada2_moe.LLaDA2MoeModel",
                     "AutoModelForCausalLM": "modeling_llada2_moe.LLaDA2MoeModelLM"},
        "embedding_dropout": 0.0, "eos_token_id": vocab["<|endoftext|>"],
        "first_k_dense_replace": 1, "head_dim": head_dim, "hidden_act": "silu",
        "hidden_size": hidden, "initializer_range": 0.006, "intermediate_size": dense_mlp,
        "mask_token_id": vocab["<|mask|>"], "max_position_embeddings": 2048,
        "max_window_layers": layers, "model_type": "llada2_moe",
        "moe_intermediate_size": expert_mlp, "moe_router_enable_expert_bias": True,
        "n_group": 4, "norm_topk_prob": True, "num_attention_heads": heads,
        "num_experts": experts, "num_experts_per_tok": 2, "num_hidden_layers": layers,
        "num_key_value_heads": kv, "num_shared_experts": 1, "output_dropout": 0.0,
        "output_router_logits": False, "pad_token_id": vocab["<|endoftext|>"],
        "partial_rotary_factor": 0.5, "rms_norm_eps": 1e-06, "rope_scaling": None,
        "rope_theta": 600000, "routed_scaling_factor": 2.5, "router_dtype": "fp32",
        "score_function": "sigmoid", "tie_word_embeddings": False, "topk_group": 2,
        "torch_dtype": "bfloat16", "transformers_version": "4.52.3", "use_bias": False,
        "use_cache": False, "use_qk_norm": True, "use_qkv_bias": False, "use_rmsnorm": True,
        "vocab_size": _round_up(len(tok)),
    }
    cfg = TransformerConfig(
        vocab_size=config["vocab_size"], hidden_size=hidden, intermediate_size=dense_mlp,
        num_layers=layers, num_heads=heads, num_kv_heads=kv, max_position=2048,
        rope_theta=600000.0, rms_eps=1e-6, head_size=head_dim, qk_norm=True,
        rotary_dim=head_dim // 2, num_experts=experts, experts_per_token=2,
        expert_intermediate_size=expert_mlp, norm_topk_prob=True, router="sigmoid",
        router_bias=True, expert_groups=4, groups_per_token=2, routed_scale=2.5,
        shared_expert_intermediate_size=expert_mlp, dense_layers=1,
    )
    model = _random_transformer(cfg, seed)
    _write_sharded(path, llada2_state_dict(model), shards)
    _write_json(path, "config.json", config)
    return path


# --------------------------------------------------------------------------- Dream


def build_tiny_dream(path: str | Path, *, seed: int = 0, instruct: bool = False,
                     shards: int = 2) -> Path:
    """Dream-v0's format: Qwen2 names with q/k/v biases, ``vocab.json`` + ``merges.txt`` for
    the remote-code DreamTokenizer (no ``tokenizer.json``), shards."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    bpe = _bpe([], specials_first=False)
    bpe.model.save(str(path))
    n = bpe.get_vocab_size()
    ids = {s: n + i for i, s in enumerate(DREAM_SPECIALS)}
    added = {str(i): {"content": s, "lstrip": False, "normalized": False, "rstrip": False,
                      "single_word": False, "special": True} for s, i in ids.items()}
    tok_config = {
        "add_prefix_space": False, "added_tokens_decoder": added,
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "auto_map": {"AutoTokenizer": ["tokenization_dream.DreamTokenizer", None]},
        "bos_token": "<|beginoftext|>", "clean_up_tokenization_spaces": False,
        "eos_token": "<|endoftext|>", "errors": "replace", "mask_token": "<|mask|>",
        "model_max_length": 131072, "pad_token": "<|endoftext|>",
        "split_special_tokens": False, "tokenizer_class": "DreamTokenizer",
        "unk_token": None,
    }
    if instruct:
        tok_config["chat_template"] = DREAM_CHAT_TEMPLATE
    _write_json(path, "tokenizer_config.json", tok_config)
    hidden, heads, kv, layers, inter = 64, 4, 2, 2, 128
    config = {
        "architectures": ["DreamModel"], "attention_dropout": 0.0,
        "auto_map": {"AutoConfig": "configuration_dream.DreamConfig",
                     "AutoModel": "modeling_dream.DreamModel"},
        "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|endoftext|>"],
        "hidden_act": "silu", "hidden_size": hidden, "initializer_range": 0.02,
        "intermediate_size": inter, "mask_token_id": ids["<|mask|>"],
        "max_position_embeddings": 4096, "max_window_layers": layers, "model_type": "Dream",
        "num_attention_heads": heads, "num_hidden_layers": layers, "num_key_value_heads": kv,
        "pad_token_id": ids["<|endoftext|>"], "rms_norm_eps": 1e-06, "rope_scaling": None,
        "rope_theta": 1000000.0, "sliding_window": None, "tie_word_embeddings": False,
        "torch_dtype": "bfloat16", "transformers_version": "4.46.2", "use_cache": False,
        "use_sliding_window": False, "vocab_size": _round_up(n + len(DREAM_SPECIALS)),
    }
    cfg = TransformerConfig(
        vocab_size=config["vocab_size"], hidden_size=hidden, intermediate_size=inter,
        num_layers=layers, num_heads=heads, num_kv_heads=kv, max_position=4096,
        rope_theta=1e6, rms_eps=1e-6, qkv_bias=True,
    )
    model = _random_transformer(cfg, seed)
    _write_sharded(path, _transformers_names(model), shards)
    _write_json(path, "config.json", config)
    _write_json(path, "generation_config.json", {
        "_from_model_config": True, "alg": "origin", "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|endoftext|>"], "pad_token_id": ids["<|endoftext|>"],
        "mask_token_id": None, "steps": 512, "temperature": 0.0,
    })
    return path


# --------------------------------------------------------------------------- masked LMs


def build_tiny_bert(path: str | Path, *, seed: int = 0) -> Path:
    """``BertForMaskedLM`` via transformers' own config class, with a WordPiece tokenizer."""
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator(TOY_CORPUS * 4, trainers.WordPieceTrainer(
        vocab_size=300, special_tokens=specials, show_progress=False))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    fast = BertTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", sep_token="[SEP]",
                             pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]")
    fast.save_pretrained(str(path))
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(fast), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=128, pad_token_id=0)
    BertForMaskedLM(config).save_pretrained(str(path))
    return path


def build_tiny_modernbert(path: str | Path, *, seed: int = 0) -> Path:
    """``ModernBertForMaskedLM`` with a byte-level BPE ``tokenizer.json`` (as ModernBERT's)."""
    from tokenizers import processors
    from transformers import ModernBertConfig, ModernBertForMaskedLM, PreTrainedTokenizerFast

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    specials = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]
    bpe = _bpe(specials)
    bpe.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 1), ("[SEP]", 2)])
    fast = PreTrainedTokenizerFast(tokenizer_object=bpe, unk_token="[UNK]", cls_token="[CLS]",
                                   sep_token="[SEP]", pad_token="[PAD]", mask_token="[MASK]")
    fast.save_pretrained(str(path))
    torch.manual_seed(seed)
    config = ModernBertConfig(
        vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=256, pad_token_id=3, bos_token_id=1,
        eos_token_id=2, cls_token_id=1, sep_token_id=2, local_attention=16,
    )
    ModernBertForMaskedLM(config).save_pretrained(str(path))
    return path


# --------------------------------------------------------------------------- DiffusionGemma

GEMMA_SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_turn>",
                  "<end_of_turn>"]
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<start_of_turn>"
    "{{ 'model' if message['role'] == 'assistant' else message['role'] }}\n"
    "{{ message['content'] | trim }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


def build_tiny_diffusion_gemma(path: str | Path, *, seed: int = 0, instruct: bool = False,
                               canvas_length: int = 16) -> Path:
    """``DiffusionGemmaForBlockDiffusion`` via transformers' own classes (MoE text model and
    a one-layer vision tower, as the config requires), with a Gemma-style ``tokenizer.json``."""
    from transformers import (
        DiffusionGemmaConfig,
        DiffusionGemmaForBlockDiffusion,
        DiffusionGemmaTextConfig,
        PreTrainedTokenizerFast,
    )

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=_bpe(GEMMA_SPECIALS), pad_token="<pad>", eos_token="<eos>",
        bos_token="<bos>", unk_token="<unk>", mask_token="<mask>",
    )
    if instruct:
        tok.chat_template = GEMMA_CHAT_TEMPLATE
    tok.save_pretrained(str(path))
    text = DiffusionGemmaTextConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16, global_head_dim=16,
        sliding_window=16, max_position_embeddings=1024,
        layer_types=["sliding_attention", "full_attention"],
        num_experts=4, top_k_experts=2, moe_intermediate_size=32,
        pad_token_id=0, eos_token_id=1, bos_token_id=2,
    )
    vision = {"model_type": "gemma4_vision", "hidden_size": 16, "intermediate_size": 32,
              "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2,
              "head_dim": 8, "patch_size": 4, "position_embedding_size": 64}
    config = DiffusionGemmaConfig(text_config=text, vision_config=vision,
                                  canvas_length=canvas_length)
    torch.manual_seed(seed)
    DiffusionGemmaForBlockDiffusion(config).save_pretrained(str(path))
    return path


# --------------------------------------------------------------------------- SDAR

#: Qwen3's added tokens in SDAR's id order (151643...151669); ``special`` as SDAR's
#: ``tokenizer_config.json`` marks them (tool, FIM, think and mask tokens are not special).
SDAR_SPECIALS = [
    ("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True),
    ("<|object_ref_start|>", True), ("<|object_ref_end|>", True), ("<|box_start|>", True),
    ("<|box_end|>", True), ("<|quad_start|>", True), ("<|quad_end|>", True),
    ("<|vision_start|>", True), ("<|vision_end|>", True), ("<|vision_pad|>", True),
    ("<|image_pad|>", True), ("<|video_pad|>", True), ("<tool_call>", False),
    ("</tool_call>", False), ("<|fim_prefix|>", False), ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False), ("<|fim_pad|>", False), ("<|repo_name|>", False),
    ("<|file_sep|>", False), ("<tool_response>", False), ("</tool_response>", False),
    ("<think>", False), ("</think>", False), ("<|MASK|>", False),
]
# Qwen3's template as SDAR ships it, without the tool branch: a system turn only if given,
# and the last assistant reply opened by a (here empty) <think> block.
SDAR_CHAT_TEMPLATE = (
    "{%- if messages[0].role == 'system' %}{{- '<|im_start|>system\\n' + messages[0].content"
    " + '<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'user' or (message.role == 'system' and not loop.first) %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
    "{%- elif message.role == 'assistant' %}{%- if loop.last %}"
    "{{- '<|im_start|>assistant\\n<think>\\n\\n</think>\\n\\n' + message.content.lstrip('\\n') }}"
    "{%- else %}{{- '<|im_start|>assistant\\n' + message.content }}{%- endif %}"
    "{{- '<|im_end|>\\n' }}{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- endif %}"
)


def _write_qwen3_tokenizer(path: Path, specials: list[tuple[str, bool]],
                           instruct: bool) -> dict[str, int]:
    """Qwen2's BPE as ``tokenizer.json`` and ``vocab.json`` + ``merges.txt`` with Qwen3's
    added tokens (``specials``; SDAR adds ``<|MASK|>``); the ids of the added tokens."""
    from transformers import Qwen2Tokenizer

    path.mkdir(parents=True, exist_ok=True)
    bpe = _bpe([], specials_first=False)
    bpe.model.save(str(path))
    n = bpe.get_vocab_size()
    ids = {s: n + i for i, (s, _) in enumerate(specials)}
    added = {str(ids[s]): {"content": s, "lstrip": False, "normalized": False, "rstrip": False,
                           "single_word": False, "special": special}
             for s, special in specials}
    extra = ["<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
             "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>",
             "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>",
             "<|video_pad|>"]
    mask = "<|MASK|>" if "<|MASK|>" in ids else None
    tok_config = {
        "add_bos_token": False, "add_prefix_space": False, "added_tokens_decoder": added,
        "additional_special_tokens": [*extra, *([mask] if mask else [])],
        "auto_map": {"AutoTokenizer": ["tokenization_qwen2.Qwen2Tokenizer", None]},
        "bos_token": None, "clean_up_tokenization_spaces": False,
        "eos_token": "<|endoftext|>", "errors": "replace", "mask_token": mask,
        "model_max_length": 131072, "pad_token": "<|endoftext|>",
        "split_special_tokens": False, "tokenizer_class": "Qwen2Tokenizer", "unk_token": None,
    }
    if instruct:
        tok_config["chat_template"] = SDAR_CHAT_TEMPLATE
    _write_json(path, "tokenizer_config.json", tok_config)
    tok = Qwen2Tokenizer.from_pretrained(str(path), local_files_only=True)
    tok.backend_tokenizer.save(str(path / "tokenizer.json"))
    # As SDAR ships it: added_tokens.json names the mask "<MASK>" where tokenizer_config
    # says "<|MASK|>" (same id); special_tokens_map.json lists "<MASK>" too.
    _write_json(path, "added_tokens.json", {
        ("<MASK>" if s == "<|MASK|>" else s): i for s, i in sorted(ids.items())})
    eot = {"content": "<|endoftext|>", "lstrip": False, "normalized": False, "rstrip": False,
           "single_word": False}
    _write_json(path, "special_tokens_map.json", {
        "additional_special_tokens": [*extra, *(["<MASK>"] if mask else [])],
        "eos_token": eot, "pad_token": eot})
    if instruct:
        (path / "chat_template.jinja").write_text(SDAR_CHAT_TEMPLATE, encoding="utf-8")
    return ids


def build_tiny_sdar(path: str | Path, *, seed: int = 0, instruct: bool = False,
                    shards: int = 2, block_size: int = 4) -> Path:
    """SDAR-4B-Chat's format: Qwen3 names (no q/k/v bias, per-head ``q_norm``/``k_norm``),
    a ``head_dim`` that is not hidden/heads, ``block_size``, ``mask_token_id``; Qwen2's BPE as
    ``tokenizer.json`` and ``vocab.json`` + ``merges.txt`` with Qwen3's added tokens; shards."""
    path = Path(path)
    ids = _write_qwen3_tokenizer(path, SDAR_SPECIALS, instruct)
    hidden, heads, kv, head_dim, layers, inter = 64, 4, 2, 32, 2, 128
    config = {
        "architectures": ["SDARForCausalLM"],
        "auto_map": {"AutoConfig": "configuration_sdar.SDARConfig",
                     "AutoModel": "modeling_sdar.SDARModel",
                     "AutoModelForCausalLM": "modeling_sdar.SDARForCausalLM"},
        "attention_bias": False, "attention_dropout": 0.0,
        "attn_implementation": "flex_attention", "bos_token_id": ids["<|endoftext|>"],
        "debug": False, "eos_token_id": ids["<|endoftext|>"], "block_size": block_size,
        "mask_token_id": ids["<|MASK|>"], "ep_size": 1, "fuse_cross_entropy": True,
        "head_dim": head_dim, "hidden_act": "silu", "hidden_size": hidden,
        "initializer_range": 0.02, "intermediate_size": inter,
        "max_position_embeddings": 4096, "max_window_layers": layers, "micro_forward": False,
        "model_type": "sdar", "num_attention_heads": heads, "num_hidden_layers": layers,
        "num_key_value_heads": kv, "rms_norm_eps": 1e-06, "rope_scaling": None,
        "rope_theta": 1000000, "skip_checkpoint": False, "sliding_window": None,
        "tie_word_embeddings": False, "torch_dtype": "bfloat16",
        "transformers_version": "4.52.4", "use_cache": False, "use_deepep": False,
        "use_sliding_window": False, "vocab_size": _round_up(max(ids.values()) + 1),
    }
    cfg = TransformerConfig(
        vocab_size=config["vocab_size"], hidden_size=hidden, intermediate_size=inter,
        num_layers=layers, num_heads=heads, num_kv_heads=kv, max_position=4096,
        rope_theta=1e6, rms_eps=1e-6, head_size=head_dim, qk_norm=True,
    )
    model = _random_transformer(cfg, seed)
    _write_sharded(path, _transformers_names(model), shards)
    _write_json(path, "config.json", config)
    _write_json(path, "generation_config.json", {
        "bos_token_id": ids["<|endoftext|>"], "do_sample": True,
        "eos_token_id": [ids["<|im_end|>"], ids["<|endoftext|>"]],
        "pad_token_id": ids["<|endoftext|>"], "temperature": 0.6, "top_k": 20, "top_p": 0.95,
        "transformers_version": "4.51.0",
    })
    return path


# --------------------------------------------------------------------------- RND1


def build_tiny_rnd1(path: str | Path, *, seed: int = 0, shards: int = 2) -> Path:
    """RND1-Base-0910's format: ``RND1LM``, ``model_type: rnd1``, Qwen3-MoE names (per-head
    ``q_norm``/``k_norm``, ``mlp.gate``, ``mlp.experts.E.*``), ``norm_topk_prob``, Qwen3's
    tokenizer without a mask token: ``mask_token_id`` is the first row past it."""
    path = Path(path)
    ids = _write_qwen3_tokenizer(path, SDAR_SPECIALS[:-1], instruct=False)
    mask = max(ids.values()) + 1
    hidden, heads, kv, head_dim, layers, experts, expert_mlp = 64, 4, 2, 32, 2, 8, 32
    config = {
        "architectures": ["RND1LM"], "attention_bias": False, "attention_dropout": 0.0,
        "auto_map": {"AutoConfig": "configuration_rnd.RND1Config",
                     "AutoModel": "modeling_rnd.RND1LM"},
        "bos_token_id": ids["<|endoftext|>"], "decoder_sparse_step": 1,
        "eos_token_id": ids["<|im_end|>"], "head_dim": head_dim, "hidden_act": "silu",
        "hidden_size": hidden, "initializer_range": 0.02, "intermediate_size": 96,
        "mask_token_id": mask, "max_position_embeddings": 40960, "max_window_layers": layers,
        "mlp_only_layers": [], "moe_backend": "hf", "moe_intermediate_size": expert_mlp,
        "model_type": "rnd1", "norm_topk_prob": True, "num_attention_heads": heads,
        "num_diffusion_steps": 256, "num_experts": experts, "num_experts_per_tok": 2,
        "num_hidden_layers": layers, "num_key_value_heads": kv, "output_router_logits": False,
        "pad_token_id": ids["<|endoftext|>"], "rms_norm_eps": 1e-06, "rope_scaling": False,
        "rope_theta": 1000000.0, "router_aux_loss_coef": 0.001, "sliding_window": False,
        "tie_word_embeddings": False, "torch_dtype": "bfloat16", "use_cache": False,
        "use_sliding_window": False, "vocab_size": _round_up(mask + 1),
    }
    cfg = TransformerConfig(
        vocab_size=config["vocab_size"], hidden_size=hidden, intermediate_size=96,
        num_layers=layers, num_heads=heads, num_kv_heads=kv, max_position=40960,
        rope_theta=1e6, rms_eps=1e-6, head_size=head_dim, qk_norm=True, num_experts=experts,
        experts_per_token=2, expert_intermediate_size=expert_mlp, norm_topk_prob=True,
    )
    model = _random_transformer(cfg, seed)
    _write_sharded(path, _transformers_names(model), shards)
    _write_json(path, "config.json", config)
    return path
