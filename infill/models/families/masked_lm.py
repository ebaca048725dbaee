"""Masked LMs (BERT, RoBERTa, ModernBERT, ...) through transformers' ``AutoModelForMaskedLM``.

A masked LM is a one-step denoiser: it scores every ``[MASK]`` given the rest. Run inside the
engine's reverse process (commit the most confident tokens, re-score, repeat) it becomes a
usable infiller, weaker than a diffusion LM for long holes because it was trained with only
~15% of tokens masked. Conventions:

- canvas: ``[CLS] context [MASK]... context [SEP]`` (``<s> ... </s>`` for RoBERTa);
- logits not shifted: row i scores token i;
- no token means "nothing here": an auto-length hole is filled to its whole budget, so give
  masked LMs exact lengths.

Only classes native to transformers load (no ``trust_remote_code``); the checkpoint must carry
its masked-LM head.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..runtime.loaded import LoadedDenoiser
from ..runtime.weights import ModelLoadError, load_tokenizer, transformers_placement

FAMILY = "masked-lm"
#: RoBERTa-style position embeddings start after the padding index.
_OFFSET_POSITIONS = {"roberta", "xlm-roberta", "camembert", "xlm-roberta-xl", "data2vec-text"}


def _mlm_types() -> set[str]:
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    return set(MODEL_FOR_MASKED_LM_MAPPING_NAMES)


def detects(config: dict) -> bool:
    archs = config.get("architectures") or []
    if any(str(a).endswith("ForMaskedLM") for a in archs):
        return True
    return str(config.get("model_type", "")) in {"bert", "roberta", "xlm-roberta", "modernbert",
                                                   "distilbert", "camembert", "deberta-v2"}


class MaskedLMDenoiser(LoadedDenoiser):
    family = FAMILY

    def __init__(self, model, tokenizer, config: dict, device: torch.device,
                 dtype: torch.dtype) -> None:
        super().__init__(model, tokenizer, config, device, dtype)
        if tokenizer.mask_token_id is None:
            raise ModelLoadError("this masked LM's tokenizer has no mask token")
        self.mask_id = int(tokenizer.mask_token_id)
        self.end_ids: frozenset[int] = frozenset()
        start = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else (
            tokenizer.bos_token_id)
        end = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else (
            tokenizer.eos_token_id)
        self.prefix_ids = (int(start),) if start is not None else ()
        self.suffix_ids = (int(end),) if end is not None else ()
        self.instruct = False
        limit = int(config.get("max_position_embeddings", 512))
        if config.get("model_type") in _OFFSET_POSITIONS:
            limit -= int(config.get("pad_token_id", 1)) + 1
        tok_limit = getattr(tokenizer, "model_max_length", None)
        if isinstance(tok_limit, int) and 0 < tok_limit < 1_000_000:
            limit = min(limit, tok_limit)
        self.max_length = limit

    def frame(self, instruction: str | None = None) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Masked LMs have no instruct form: always ``[CLS] canvas [SEP]``."""
        return self.prefix_ids, self.suffix_ids

    def logits(self, ids: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        with torch.inference_mode():
            out = self.model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
            if positions is not None:
                out = out[:, positions]
            return out.float()


def load(path: str | Path, config: dict, device: torch.device,
         dtype: torch.dtype) -> MaskedLMDenoiser:
    kind = config.get("model_type", "<none>")
    if kind not in _mlm_types():
        raise ModelLoadError(f"model_type {kind!r} has no masked-LM class in this transformers")
    from transformers import AutoModelForMaskedLM

    try:
        model, info = AutoModelForMaskedLM.from_pretrained(
            str(path), local_files_only=True, trust_remote_code=False, dtype=dtype,
            output_loading_info=True, **transformers_placement(device),
        )
    except Exception as e:  # transformers raises many types for a broken directory
        raise ModelLoadError(f"cannot load the masked LM in {path}: {e}") from None
    missing = list(info.get("missing_keys") or [])
    if missing:
        shown = ", ".join(sorted(missing)[:3])
        raise ModelLoadError(
            f"{path} lacks {len(missing)} tensors of the masked-LM head or body ({shown}); "
            "is it a base encoder without its MLM head?"
        )
    model.to(device).eval()
    return MaskedLMDenoiser(model, load_tokenizer(path), config, device, dtype)
