"""Reading llama.cpp GGUF files: metadata, dequantized tensors, the byte-level BPE vocabulary.

Shared by the embedded default's converter (``smollm2.py``) and the diffusion GGUF loader
(``gguf_diffusion.py``), so that one reader knows ggml's conventions:

* ggml lists a tensor's dimensions innermost first: the shape is reversed to PyTorch's;
* ``gguf.quants.dequantize`` turns every stored type it supports (F32, F16, BF16, Q8_0,
  Q4_0/1, Q5_0/1, the K-quants, IQ-quants) into float32, one tensor at a time;
* llama.cpp's converter permutes the q/k rows of LLaMA-rope architectures (``llama``,
  ``llada``) so that rotary pairs are interleaved; ``unpermute`` undoes that. NEOX-rope
  architectures (``qwen2``, ``dream``, ``llada-moe``) are stored unpermuted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from .weights import ModelLoadError

#: ``tokenizer.ggml.token_type`` values (llama.cpp's ``llama_token_type``).
CONTROL, USER_DEFINED, UNUSED = 3, 4, 5

_MISSING = object()

#: Pre-tokenizer regexes by ``tokenizer.ggml.pre`` (llama.cpp's names); ``gpt-2`` is the
#: byte-level pre-tokenizer's own regex.
_QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
          r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
           r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
#: llama.cpp's ``LLAMA_VOCAB_PRE_TYPE_BAILINGMOE`` (pre ``bailingmoe``, ``bailingmoe2``,
#: ``llada-moe``): the Ling tokenizer's regex with its possessive quantifiers made greedy, as
#: llama.cpp runs it; single digits, one newline per piece.
_BAILING = (r"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
            r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+")


class GGUFReadError(ModelLoadError):
    """A file that ``gguf.GGUFReader`` cannot parse (cut short, not a GGUF)."""


def open_gguf(path: str | Path):
    """A ``gguf.GGUFReader`` (memory-mapped: tensors are read when touched)."""
    from gguf import GGUFReader

    try:
        return GGUFReader(str(path))
    except (OSError, ValueError, KeyError, IndexError) as e:
        raise GGUFReadError(f"{path} is not a readable GGUF file: {e}") from None


def field(reader, key: str, default=_MISSING):
    """The value of metadata ``key`` (``default`` when absent; an error without one)."""
    f = reader.fields.get(key)
    if f is None:
        if default is _MISSING:
            raise ModelLoadError(f"GGUF file lacks the metadata key {key!r}")
        return default
    return f.contents()


def tensor(t) -> torch.Tensor:
    """A GGUF tensor (``ReaderTensor``) as a float32 torch tensor in PyTorch's layout."""
    import numpy as np
    from gguf.quants import dequantize

    try:
        arr = dequantize(t.data, t.tensor_type)
    except NotImplementedError:
        raise ModelLoadError(f"GGUF tensor {t.name!r} has type {t.tensor_type.name}, which "
                             "gguf.quants cannot dequantize") from None
    arr = np.ascontiguousarray(arr, dtype=np.float32).reshape([int(s) for s in reversed(t.shape)])
    # F32 comes back as a read-only view of the memory map: copy that one only
    return torch.from_numpy(arr if arr.flags.writeable else arr.copy())


def unpermute(w: torch.Tensor, n_head: int) -> torch.Tensor:
    """Undo llama.cpp's q/k row permutation (rotary pairs interleaved per head), for a
    weight ``[rows, in]`` or a bias ``[rows]``."""
    d, rest = w.shape[0], tuple(w.shape[1:])
    return w.reshape(n_head, d // n_head // 2, 2, *rest).transpose(1, 2).reshape(d, *rest)



#: Architectures whose q/k rows llama.cpp's converter permuted (LLaMA-style rope);
#: ``dream`` and ``llada-moe`` run NEOX rope and their converters permute nothing.
PERMUTED = {"llama", "llada"}

_BLOCK = {
    "attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm", "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
    "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
    "ffn_gate_inp": "mlp.gate",
}
#: Stacked expert tensors ``[experts, out, in]``, split into one tensor per expert on load.
_EXPERTS = {"ffn_gate_exps": "gate_proj", "ffn_up_exps": "up_proj",
            "ffn_down_exps": "down_proj"}
_TOP = {"token_embd.weight": "embed_tokens.weight", "output_norm.weight": "norm.weight",
        "output.weight": "lm_head.weight"}


def native_name(name: str) -> str | None:
    """A llama.cpp tensor name to the native Transformer's (transformers' names without the
    ``model.`` prefix); an unknown name comes back as it is, for the loader to report."""
    if name in _TOP:
        return _TOP[name]
    parts = name.split(".")
    if len(parts) == 4 and parts[0] == "blk" and parts[2] in _BLOCK:
        return f"layers.{parts[1]}.{_BLOCK[parts[2]]}.{parts[3]}"
    if len(parts) == 5 and parts[0] == "blk" and parts[2] in _EXPERTS:  # stream_tensors' split
        return f"layers.{parts[1]}.mlp.experts.{parts[3]}.{_EXPERTS[parts[2]]}.{parts[4]}"
    if name == "rope_freqs.weight":
        raise ModelLoadError("GGUF carries rope_freqs (scaled rope); not supported")
    return name


def stream_tensors(reader, arch: str, heads: int, kv_heads: int, experts: int = 0
                   ) -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor dequantized to float32 in PyTorch's layout, q/k un-permuted where the
    converter permuted them, one at a time. A stacked expert tensor ``blk.N.ffn_*_exps.weight``
    (``[experts, out, in]``) comes out as one ``blk.N.ffn_*_exps.E.weight`` per expert E."""
    for t in reader.tensors:
        w = tensor(t)
        parts = t.name.split(".")
        kind = parts[2] if parts[0] == "blk" and len(parts) == 4 else None
        if arch in PERMUTED and kind == "attn_q":
            w = unpermute(w, heads)
        elif arch in PERMUTED and kind == "attn_k":
            w = unpermute(w, kv_heads)
        if kind in _EXPERTS:
            if w.ndim != 3 or w.shape[0] != experts:
                raise ModelLoadError(f"GGUF tensor {t.name!r} has shape {tuple(w.shape)}; "
                                     f"expected [{experts} experts, out, in]")
            for e in range(w.shape[0]):
                yield f"blk.{parts[1]}.{kind}.{e}.{parts[3]}", w[e]
            continue
        yield t.name, w

def vocabulary(reader) -> tuple[list[str], list[int], list[tuple[str, str]]]:
    """``(tokens, token types, merges)`` of a GGUF's ``gpt2`` (byte-level BPE) vocabulary."""
    f = reader.fields["tokenizer.ggml.tokens"]
    tokens = [bytes(f.parts[i]).decode("utf-8") for i in f.data]
    types = reader.fields.get("tokenizer.ggml.token_type")
    kinds = [int(types.parts[i][0]) for i in types.data] if types else [1] * len(tokens)
    m = reader.fields.get("tokenizer.ggml.merges")
    merges = ([tuple(bytes(m.parts[i]).decode("utf-8").split(" ", 1)) for i in m.data]
              if m else [])
    return tokens, kinds, merges


def _split_then_bytes(pattern: str, nfc: bool = False) -> Callable:
    def make(tok) -> None:
        from tokenizers import Regex, normalizers, pre_tokenizers

        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
        if nfc:
            tok.normalizer = normalizers.NFC()
    return make


def _smollm(tok) -> None:
    from tokenizers import pre_tokenizers

    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])


def _gpt2(tok) -> None:
    from tokenizers import pre_tokenizers

    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)


#: ``tokenizer.ggml.pre`` -> what sets that pre-tokenizer (and normalizer) on a Tokenizer.
PRE_TOKENIZERS: dict[str, Callable] = {
    "smollm": _smollm,
    "gpt-2": _gpt2,
    "default": _gpt2,
    "qwen2": _split_then_bytes(_QWEN2, nfc=True),
    "llama-bpe": _split_then_bytes(_LLAMA3),
    "llama3": _split_then_bytes(_LLAMA3),
    "bailingmoe": _split_then_bytes(_BAILING),
    "bailingmoe2": _split_then_bytes(_BAILING),
    "llada-moe": _split_then_bytes(_BAILING),
}


def byte_level_bpe(tokens: list[str], merges: list[tuple[str, str]], pre: str):
    """A ``tokenizers.Tokenizer`` (byte-level BPE, no special tokens yet) from a GGUF
    vocabulary, with the pre-tokenizer llama.cpp names ``pre``."""
    from tokenizers import Tokenizer, decoders, models, processors

    if pre not in PRE_TOKENIZERS:
        raise ModelLoadError(f"GGUF tokenizer pre-tokenizer {pre!r} is not supported "
                             f"(supported: {', '.join(sorted(PRE_TOKENIZERS))})")
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False))
    PRE_TOKENIZERS[pre](tok)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok
