"""What every family on the native transformer shares: logits realigned when the family's
head is shifted, the output head only where asked, and the dual key/value cache."""

from __future__ import annotations

import torch

from . import chat
from .loaded import LoadedDenoiser
from .transformer import KVCache, Transformer, TransformerConfig, forbid_untrained_rows
from .weights import load_into


def load_network(path, cfg: TransformerConfig, rename, device: torch.device,
                 dtype: torch.dtype, **streaming) -> Transformer:
    """The native transformer for ``cfg``, built on the meta device and filled from the
    checkpoint at ``path`` (``rename``: its tensor names to ours; ``streaming``: what
    ``load_into`` takes besides), in eval mode."""
    with torch.device("meta"):
        model = Transformer(cfg)
    load_into(model, path, rename, device=device, dtype=dtype, **streaming)
    return model.eval()


def load_family(denoiser: type, path, config: dict, cfg: TransformerConfig, rename,
                tokenizer, device: torch.device, dtype: torch.dtype, **streaming):
    """``denoiser`` (a family's class) over the native transformer streamed from ``path``
    (``streaming``: what ``load_into`` takes besides), framed for an instruct checkpoint
    when the checkpoint's name says it is one."""
    model = load_network(path, cfg, rename, device, dtype, **streaming)
    return denoiser(model, tokenizer, config, device, dtype,
                    instruct=chat.looks_instruct(path, config))


class NativeDenoiser(LoadedDenoiser):
    """Base of the Lacuna, LLaDA and Dream denoisers; a family sets its own conventions
    (``mask_id``, ``end_ids``, ``prefix_ids``, ``suffix_ids``, ``max_length``, ``shift``)."""

    family = "native"
    #: Shifted families (Dream, Lacuna) score token ``i`` with network row ``i - 1``.
    shift = False

    def __init__(self, model: Transformer, tokenizer, config: dict, device: torch.device,
                 dtype: torch.dtype) -> None:
        super().__init__(model, tokenizer, config, device, dtype)
        self.tokens = len(tokenizer)

    def _rows(self, positions: torch.Tensor) -> torch.Tensor:
        """Network rows whose head scores ``positions`` (one earlier when shifted)."""
        if not self.shift:
            return positions
        if bool((positions < 1).any()):
            raise ValueError("position 0 has no logit in a shifted family")
        return positions - 1

    def _out(self, logits: torch.Tensor) -> torch.Tensor:
        return forbid_untrained_rows(logits.float(), self.tokens)

    def raw_logits(self, ids: torch.Tensor) -> torch.Tensor:
        """The network's own output (shifted families: row ``i - 1`` scores token ``i``)."""
        with torch.inference_mode():
            return self._out(self.model(ids))

    def logits(self, ids: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        with torch.inference_mode():
            if positions is not None:
                return self._out(self.model(ids, rows=self._rows(positions)))
            raw = self.raw_logits(ids)
            return torch.cat([raw[:, :1], raw[:, :-1]], dim=1) if self.shift else raw

    def prefill(self, ids: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, KVCache]:
        """Logits for ``positions`` from a full pass that also fills a key/value cache."""
        cache = KVCache()
        with torch.inference_mode():
            return self._out(self.model(ids, rows=self._rows(positions), cache=cache)), cache

    def cached_logits(
        self, ids: torch.Tensor, positions: torch.Tensor, cache: KVCache, active: torch.Tensor
    ) -> torch.Tensor:
        """Logits for ``positions`` recomputing only the ``active`` rows (the block being
        denoised, and for a shifted head the rows just before them); every other row's keys
        and values come from ``cache``, as they were at the last full pass."""
        rows = torch.unique(torch.cat([self._rows(active), active])) if self.shift else active
        with torch.inference_mode():
            return self._out(
                self.model(ids, rows=self._rows(positions), cache=cache, active=rows)
            )
