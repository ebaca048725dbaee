"""SDAR (``JetLM/SDAR-1.7B-Chat``, ``SDAR-4B-Chat``, ``SDAR-8B-Chat``): block diffusion.

On disk an SDAR checkpoint is a Qwen3 checkpoint (``config.json`` with ``model_type: sdar``,
``architectures: [SDARForCausalLM]``, ``block_size``, ``mask_token_id`` 151669;
``model.layers.N.self_attn.{q,k,v,o}_proj`` without biases, per-head ``q_norm``/``k_norm``,
``model.norm``, ``lm_head``) and Qwen2's byte-level BPE tokenizer (``tokenizer.json``,
``vocab.json`` + ``merges.txt``) with Qwen3's added tokens, ``<|MASK|>`` among them.

SDAR decodes a sequence in blocks of ``block_size`` tokens, left to right, and attends
block-causally: a token sees every token of the earlier blocks and of its own block, nothing
after. Blocks are counted from the first token the model reads. Its logits are not shifted:
row ``i`` scores token ``i`` (``generate.py`` samples the current block's masks from their own
rows; training scores each noised token's label at its own row).

So a suffix after the hole is invisible to the hole (beyond the hole's last block). Lacuna
gives the suffix to the model the one way a Qwen3 tokenizer spells it: as fill-in-the-middle
context placed before the hole,

    [frame head] <|fim_prefix|> before <|fim_suffix|> after <|fim_middle|> hole [frame tail]

where ``hole`` runs from the first to the last mask of the canvas and ``before``/``after``
are the canvas around it. The logits are mapped back to canvas rows, so the sampler sees the
canvas it built. Whether SDAR (or the Qwen3 base it was trained from) saw FIM prompts is not
documented: the suffix as context is a best effort. ``$LACUNA_SDAR_FIM=0`` (or
``denoiser.fim = False``) runs the canvas as it stands: prefix completion, the model's
native use, in which the suffix is seen only by the hole's last block.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..runtime import chat
from ..runtime.loaded import LoadedDenoiser
from ..runtime.native import load_family
from ..runtime.transformer import (
    KVCache,
    Transformer,
    TransformerConfig,
    forbid_untrained_rows,
    from_qwen_config,
)
from ..runtime.weights import ModelLoadError
from .dream import load_dream_tokenizer, rename_for  # Qwen's names, as Dream's

FAMILY = "sdar"
MASK_ID = 151669
#: ``block_size`` of every released SDAR config (``generate.py``'s ``--block_length`` too).
BLOCK_SIZE = 4
FIM_TOKENS = ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>")


def detects(config: dict) -> bool:
    archs = config.get("architectures") or []
    kind = str(config.get("model_type", "")).lower()
    return kind.startswith("sdar") or any(a.startswith("SDAR") for a in archs)


def transformer_config(config: dict) -> TransformerConfig:
    kind = str(config.get("model_type", "")).lower()
    archs = config.get("architectures") or []
    if kind != "sdar" or config.get("num_experts") or any("Moe" in a for a in archs):
        raise ModelLoadError(
            f"SDAR variant model_type={kind!r} / {', '.join(archs) or '<none>'} is not supported: "
            "Lacuna runs the dense SDAR checkpoints (model_type 'sdar'); the mixture-of-experts "
            "SDAR-30B-A3B needs an MoE feed-forward"
        )
    if config.get("attention_bias"):
        raise ModelLoadError("SDAR config sets attention_bias; the released checkpoints have "
                             "no q/k/v/o biases and Lacuna supports only those")
    head = int(config["head_dim"]) if config.get("head_dim") else None
    return from_qwen_config(config, "SDAR", rope_theta=1000000.0, head_size=head, qk_norm=True)


def block_causal(length: int, block_size: int, device: torch.device | str) -> torch.Tensor:
    """``[length, length]`` bool: query row ``q`` may read key ``k`` when ``k``'s block is not
    after ``q``'s (blocks of ``block_size`` counted from position 0), as ``generate.py``'s
    ``tril(ones(blocks, blocks)).repeat_interleave(block_size)`` mask."""
    block = torch.arange(length, device=device) // block_size
    return block[None, :] <= block[:, None]


def fim_order(ids: list[int], mask_id: int, head: int, tail: int) -> list[int]:
    """Where each model position reads from: canvas positions ``0..L-1``, and ``L``, ``L+1``,
    ``L+2`` for ``<|fim_prefix|>``, ``<|fim_suffix|>``, ``<|fim_middle|>``.

    ``head``/``tail``: how many canvas tokens are the frame (``prefix_ids``/``suffix_ids``),
    which stay first and last. The hole runs from the first to the last mask between them (a
    canvas without masks has an empty hole before the tail)."""
    n = len(ids)
    masks = [i for i in range(head, n - tail) if ids[i] == mask_id]
    a, b = (masks[0], masks[-1] + 1) if masks else (n - tail, n - tail)
    return [*range(head), n, *range(head, a), n + 1, *range(b, n - tail), n + 2, *range(a, b),
            *range(n - tail, n)]


class SDARDenoiser(LoadedDenoiser):
    """``Denoiser`` over the native Qwen3 run block-causally, the suffix laid out as FIM
    context before the hole. Its key/value cache (``prefill``/``cached_logits``) recomputes
    the current block's model blocks only, exact for block-causal attention; under FIM it
    keeps nothing (the layout moves)."""

    family = FAMILY
    #: What a family of SDAR's kind sets: its mask and block size when the config names
    #: none, its instruct turn's end, and the FIM tokens it spells a suffix with (none: the
    #: canvas runs as it stands, prefix completion).
    default_mask_id, default_block_size = MASK_ID, BLOCK_SIZE
    turn_end = "<|im_end|>"
    fim_tokens: tuple[str, ...] = FIM_TOKENS

    def __init__(self, model: Transformer, tokenizer, config: dict, device: torch.device,
                 dtype: torch.dtype, instruct: bool) -> None:
        super().__init__(model, tokenizer, config, device, dtype)
        self.tokens = len(tokenizer)
        self.block_size = int(config.get("block_size") or self.default_block_size)
        self.mask_id = int(config.get("mask_token_id") or tokenizer.mask_token_id
                           or self.default_mask_id)
        fim = [chat.token_id(tokenizer, t) for t in self.fim_tokens]
        self.fim_ids: tuple[int, int, int] | None = (
            tuple(int(i) for i in fim) if fim and all(i is not None for i in fim) else None)
        forced = os.environ.get("LACUNA_SDAR_FIM", "").strip().lower()
        self.fim = self.fim_ids is not None and forced not in ("0", "false", "no")
        # Three FIM tokens join the canvas inside the model's window.
        self.max_length = model.cfg.max_position - len(self.fim_tokens)
        self.instruct = bool(instruct and chat.has_chat_template(tokenizer))
        turn_end = chat.token_id(tokenizer, self.turn_end) if self.instruct else None
        self.end_ids = chat.end_ids(tokenizer, config, self.mask_id, turn_end)
        self.prefix_ids, self.suffix_ids = self.frame()

    # ------------------------------------------------------------------ what doctor says
    @property
    def attention(self) -> str:
        return (f"block-causal, blocks of {self.block_size} decoded left to right "
                f"(the sampler follows them unless --block-length names others)")

    @property
    def infill_support(self) -> str:
        if self.fim:
            return ("prefix completion native; the suffix is FIM context before the hole "
                    "(<|fim_prefix|> ... <|fim_suffix|> ... <|fim_middle|>), a best effort: "
                    "SDAR's training on FIM is not documented")
        return ("prefix completion only (LACUNA_SDAR_FIM=0 or no FIM tokens): the suffix is "
                "seen only by the hole's last block")

    # ------------------------------------------------------------------ framing
    def frame(self, instruction: str | None = None) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """``(prefix_ids, suffix_ids)``: Qwen3's chat turn for the Chat checkpoints, with the
        empty ``<think>`` block a non-thinking reply opens with; nothing for a base form
        (Qwen3 has no BOS, and FIM prompts start at ``<|fim_prefix|>``)."""
        if not self.instruct:
            return (), ()
        instruction = instruction or chat.DEFAULT_INSTRUCTION
        prefix, suffix = chat.chat_frame(self.tokenizer, instruction)
        user = [{"role": "user", "content": instruction}]
        try:
            head = self.tokenizer.apply_chat_template(user, add_generation_prompt=True,
                                                      tokenize=False)
            quiet = self.tokenizer.apply_chat_template(user, add_generation_prompt=True,
                                                       enable_thinking=False, tokenize=False)
        except Exception:  # chat_frame rendered the same template: not expected to fail
            return prefix, suffix
        if quiet.startswith(head) and len(quiet) > len(head):
            extra = self.tokenizer(quiet[len(head):], add_special_tokens=False)["input_ids"]
            prefix = (*prefix, *extra)
        return tuple(prefix), tuple(suffix)

    # ------------------------------------------------------------------ the layout
    def _frame_lengths(self, row: list[int]) -> tuple[int, int]:
        head, tail = len(self.prefix_ids), len(self.suffix_ids)
        head = head if tuple(row[:head]) == self.prefix_ids else 0
        tail = tail if tail and tuple(row[len(row) - tail:]) == self.suffix_ids else 0
        return head, (tail if head + tail <= len(row) else 0)

    def layout(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(model_ids [B, L'], rows [B, L])``: what the network reads for the canvases
        ``ids`` ``[B, L]``, and the model row that scores each canvas position."""
        batch, n = ids.shape
        if not self.fim:
            rows = torch.arange(n, device=ids.device).expand(batch, n)
            return ids, rows
        extra = torch.tensor(self.fim_ids, dtype=ids.dtype, device=ids.device)
        source = torch.cat([ids, extra.expand(batch, -1)], dim=1)
        orders = []
        for row in ids.tolist():
            orders.append(fim_order(row, self.mask_id, *self._frame_lengths(row)))
        order = torch.tensor(orders, dtype=torch.long, device=ids.device)
        rows = torch.argsort(order, dim=1)[:, :n]
        return source.gather(1, order), rows

    def block_ids(self, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """The model block (``block_size`` model positions, counted from the first) in which
        each canvas position of ``ids`` ``[L]`` is read: under FIM the hole sits after
        ``<|fim_middle|>``, so its blocks are not the canvas's."""
        _, rows = self.layout(ids[None])
        return rows[0, positions] // self.block_size

    # ------------------------------------------------------------------ logits
    def raw_logits(self, model_ids: torch.Tensor) -> torch.Tensor:
        """The network's logits for ``model_ids`` as laid out (``layout``), block-causal."""
        with torch.inference_mode():
            allowed = block_causal(model_ids.shape[1], self.block_size, model_ids.device)
            return forbid_untrained_rows(self.model(model_ids, allowed=allowed).float(),
                                         self.tokens)

    def logits(self, ids: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        with torch.inference_mode():
            model_ids, rows = self.layout(ids)
            if positions is not None:
                rows = rows[:, positions]
            allowed = block_causal(model_ids.shape[1], self.block_size, model_ids.device)
            h = self.model.hidden(model_ids, allowed=allowed)
            return self._head(h.gather(1, rows[..., None].expand(-1, -1, h.shape[-1])))

    def _head(self, h: torch.Tensor) -> torch.Tensor:
        out = self.model.lm_head(h)
        if self.model.cfg.logit_scale != 1.0:
            out = out * self.model.cfg.logit_scale
        return forbid_untrained_rows(out.float(), self.tokens)

    # ------------------------------------------------------------------ key/value cache
    def prefill(self, ids: torch.Tensor, positions: torch.Tensor
                ) -> tuple[torch.Tensor, KVCache | None]:
        """Logits for ``positions`` from a full pass that keeps every position's keys and
        values. Under FIM there is nothing to keep (``None``): the layout moves as the
        hole's edges are committed, and with it every position after them."""
        if self.fim:
            return self.logits(ids, positions), None
        cache = KVCache()
        with torch.inference_mode():
            allowed = block_causal(ids.shape[1], self.block_size, ids.device)
            return self._head(self.model.hidden(ids, cache=cache, allowed=allowed)[:, positions]
                              ), cache

    def cached_logits(self, ids: torch.Tensor, positions: torch.Tensor, cache: KVCache | None,
                      active: torch.Tensor) -> torch.Tensor:
        """Logits for ``positions`` recomputing only the model blocks that hold ``active``
        (every position of them: the block's other tokens read its masks), the other
        positions' keys and values from ``cache``. Exact under block-causal attention:
        earlier blocks read nothing that changed since the full pass, and nothing in these
        blocks reads a later one."""
        if cache is None:
            return self.logits(ids, positions)
        n, size = ids.shape[1], self.block_size
        blocks = torch.unique(active // size)
        rows = (blocks[:, None] * size + torch.arange(size, device=ids.device)).flatten()
        rows = rows[rows < n]
        with torch.inference_mode():
            allowed = block_causal(n, size, ids.device)
            h = self.model.hidden(ids, cache=cache, active=rows, allowed=allowed)
            return self._head(h[:, torch.searchsorted(rows, positions)])

def load(path: str | Path, config: dict, device: torch.device,
         dtype: torch.dtype) -> SDARDenoiser:
    cfg = transformer_config(config)
    tokenizer = load_dream_tokenizer(path)  # tokenizer.json, else vocab.json + merges.txt
    return load_family(SDARDenoiser, path, config, cfg, rename_for(cfg), tokenizer, device, dtype)
