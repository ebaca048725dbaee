"""The Lacuna family: a LLaMA checkpoint adapted to masked diffusion (the embedded default).

On disk it is a transformers Llama checkpoint (``config.json`` with ``model_type: llama``,
``model.*`` parameter names, ``tokenizer.json``) plus a ``lacuna`` section in the config:

    "lacuna": {"mask_token_id": 1, "end_token_ids": [0], "prefix_token_ids": [2],
               "shift_logits": true}

Like Dream, it keeps the autoregressive head's one-position shift (the logit at ``i - 1``
scores token ``i``) so the pretrained head transfers; ``logits`` realigns it here, and the
canvas always starts with a prefix token so that position 0 is never a hole.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .adapter import merge_adapter
from .transformer import KVCache, Transformer, TransformerConfig
from .weights import ModelLoadError, load_into, load_tokenizer

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
        )
    except KeyError as e:
        raise ModelLoadError(
            f"config.json lacks {e.args[0]!r}, needed by the Llama shape"
        ) from None


class LacunaDenoiser:
    """``Denoiser`` over a native bidirectional Llama with the shift realigned."""

    family = FAMILY

    def __init__(self, model: Transformer, tokenizer, config: dict, device: torch.device,
                 dtype: torch.dtype) -> None:
        meta = config["lacuna"]
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.dtype = dtype
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
        self.config = config

    def logits(self, ids: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        with torch.inference_mode():
            if positions is not None:
                return self.model(ids, rows=self._rows(positions)).float()
            raw = self.model(ids).float()
            return torch.cat([raw[:, :1], raw[:, :-1]], dim=1) if self.shift else raw

    def _rows(self, positions: torch.Tensor) -> torch.Tensor:
        """Network rows whose head scores ``positions`` (one earlier when shifted)."""
        return positions - 1 if self.shift else positions

    def prefill(self, ids: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, KVCache]:
        """Logits for ``positions`` from a full pass that also fills a key/value cache."""
        cache = KVCache()
        with torch.inference_mode():
            return self.model(ids, rows=self._rows(positions), cache=cache).float(), cache

    def cached_logits(
        self, ids: torch.Tensor, positions: torch.Tensor, cache: KVCache, active: torch.Tensor
    ) -> torch.Tensor:
        """Logits for ``positions`` recomputing only the ``active`` rows (the block being
        denoised); every other row's keys and values come from ``cache``."""
        rows = self._rows(active)
        if self.shift:
            rows = torch.unique(torch.cat([rows, active]))
        with torch.inference_mode():
            return self.model(ids, rows=self._rows(positions), cache=cache, active=rows).float()


def load(path: str | Path, config: dict, device: torch.device,
         dtype: torch.dtype) -> LacunaDenoiser:
    cfg = transformer_config(config)
    with torch.device("meta"):
        model = Transformer(cfg)

    def rename(name: str) -> str | None:
        if name.startswith("model."):
            return name[len("model."):]
        if name == "lm_head.weight":
            return None if cfg.tie_embeddings else name
        return None  # rotary caches and other buffers some exporters write

    load_into(model, path, rename, device=device, dtype=dtype)
    adapter = config["lacuna"].get("adapter")
    if adapter:  # what a fine-tune changed, merged into the base weights (adapter.py)
        merge_adapter(model, Path(path) / adapter, rename)
    model.eval()
    return LacunaDenoiser(model, load_tokenizer(path), config, device, dtype)
