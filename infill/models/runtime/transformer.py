"""A bidirectional LLaMA-style transformer, readable top to bottom.

RMSNorm, rotary positions, grouped-query attention through SDPA, SwiGLU. Masked-diffusion
families (LLaDA, Dream, the embedded default) are this network with different parameter
names, biases and conventions; each family module maps its checkpoint onto it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn

from .weights import ModelLoadError


@dataclass(frozen=True)
class TransformerConfig:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    max_position: int
    rope_theta: float = 10000.0
    rms_eps: float = 1e-5
    qkv_bias: bool = False
    tie_embeddings: bool = False
    #: Multiplies the token embeddings (LLaDA's ``input_emb_norm``: sqrt(hidden)).
    embed_scale: float = 1.0
    #: Multiplies the logits (LLaDA's ``scale_logits``: 1/sqrt(hidden)).
    logit_scale: float = 1.0
    #: Positions are divided by this before RoPE (linear position interpolation).
    rope_position_scale: float = 1.0
    #: Start of a learned per-head bias on attention to later positions (``None``: plain
    #: bidirectional attention). Started very negative, the network is the causal model it
    #: was pretrained as; training raises the bias where the suffix helps: attention
    #: annealed from causal to bidirectional, by gradient descent and per head.
    future_bias: float | None = None
    #: Width of one attention head when the config names it (Qwen3's ``head_dim``: 128 in
    #: SDAR-4B, whose hidden size 2560 is not 32 heads of 128); ``None``: hidden / heads.
    head_size: int | None = None
    #: Per-head RMSNorm of queries and keys before RoPE (Qwen3's and LLaDA-MoE's
    #: ``q_norm``/``k_norm``: one weight of head_dim, shared by the heads).
    qk_norm: bool = False
    #: Mixture of experts in every block's feed-forward (0: the dense SwiGLU ``MLP``).
    num_experts: int = 0
    #: Experts each token is routed to (the router's top-k).
    experts_per_token: int = 0
    #: Hidden width of one expert's SwiGLU.
    expert_intermediate_size: int = 0
    #: Renormalise the top-k router probabilities to sum to one (Qwen2-MoE's option).
    norm_topk_prob: bool = False
    #: Router scoring: ``softmax`` over all experts (OLMoE, LLaDA-MoE), or ``sigmoid`` per
    #: expert, chosen by score plus a learned routing bias within the best groups of experts
    #: (DeepSeek-V3's and LLaDA 2.x's router, transformers' Glm4Moe).
    router: str = "softmax"
    #: The sigmoid router's ``expert_bias`` (added for the choice, not to the weights).
    router_bias: bool = False
    #: Sigmoid routing: the experts form ``expert_groups`` groups and a token picks its
    #: experts inside the ``groups_per_token`` groups whose two best experts score highest.
    expert_groups: int = 1
    groups_per_token: int = 1
    #: Multiplies the routed experts' weights (``routed_scaling_factor``).
    routed_scale: float = 1.0
    #: Width of the shared expert every token runs besides its routed ones (0: none).
    shared_expert_intermediate_size: int = 0
    #: The first this many blocks keep the dense SwiGLU at ``intermediate_size``
    #: (``first_k_dense_replace``).
    dense_layers: int = 0
    #: Rotary dimensions of a head when only its first part rotates (partial rotary, the
    #: rest passes through); ``None``: the whole head.
    rotary_dim: int | None = None

    @property
    def head_dim(self) -> int:
        return self.head_size or self.hidden_size // self.num_heads

    @property
    def rotary_width(self) -> int:
        return self.rotary_dim or self.head_dim


def from_qwen_config(config: dict, family: str, *, rope_theta: float,
                     intermediate_key: str = "intermediate_size",
                     **fields: object) -> TransformerConfig:
    """The native transformer for a Qwen2/Qwen3-style ``config.json`` (Dream, SDAR,
    LLaDA-MoE): the keys they share read once, the features Lacuna does not run refused by
    name; ``fields`` are what the family sets itself (``qkv_bias``, ``qk_norm``, ...) and
    override what is read here."""
    if config.get("rope_scaling"):
        raise ModelLoadError(f"{family} config sets rope_scaling={config['rope_scaling']!r}; "
                             "Lacuna supports plain RoPE (the released checkpoints)")
    if config.get("use_sliding_window"):
        raise ModelLoadError(f"{family} config enables sliding-window attention; not supported")
    if config.get("hidden_act", "silu") != "silu":
        raise ModelLoadError(f"{family} config has hidden_act={config['hidden_act']!r}, "
                             "not silu")
    try:
        heads = int(config["num_attention_heads"])
        values: dict = dict(
            vocab_size=int(config["vocab_size"]),
            hidden_size=int(config["hidden_size"]),
            intermediate_size=int(config[intermediate_key]),
            num_layers=int(config["num_hidden_layers"]),
            num_heads=heads,
            num_kv_heads=int(config.get("num_key_value_heads") or heads),
            max_position=int(config.get("max_position_embeddings", 32768)),
            rope_theta=float(config.get("rope_theta", rope_theta)),
            rms_eps=float(config.get("rms_norm_eps", 1e-6)),
            tie_embeddings=bool(config.get("tie_word_embeddings", False)),
        )
    except KeyError as e:
        raise ModelLoadError(f"{family} config.json lacks {e.args[0]!r}") from None
    return TransformerConfig(**(values | fields))


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def rotary(length: int, dim: int, theta: float, device: torch.device,
           position_scale: float = 1.0) -> tuple[torch.Tensor, ...]:
    inv = 1.0 / theta ** (torch.arange(0, dim, 2, device=device, dtype=torch.float32) / dim)
    positions = torch.arange(length, device=device, dtype=torch.float32)
    if position_scale != 1.0:
        positions = positions / position_scale
    angles = torch.outer(positions, inv)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=-1)
    return torch.cat([-b, a], dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE on the first ``cos.shape[-1]`` dimensions of each head (all of them unless the
    rotary is partial); the rest pass through."""
    d = cos.shape[-1]
    if d < x.shape[-1]:
        return torch.cat([apply_rotary(x[..., :d], cos, sin), x[..., d:]], dim=-1)
    return (x * cos.to(x.dtype)) + (_rotate_half(x) * sin.to(x.dtype))


@dataclass
class KVCache:
    """Keys and values of every position, per layer, from one full pass (Fast-dLLM's dual
    cache): later passes recompute only the active rows and reuse the rest."""

    layers: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)


@dataclass
class PastKV:
    """Keys and values of a causal left context, per layer: what an incremental
    (autoregressive) pass attends to besides its own tokens. Batch 1 broadcasts.

    ``shared``: a batch-1 context that comes before this cache's own tokens and that every
    row reads without copying it (beams or drafts branching from one context); ``length``
    counts it too."""

    layers: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)
    length: int = 0
    shared: PastKV | None = None

    def branch(self) -> PastKV:
        """An empty cache whose rows all continue this (batch-1) context."""
        if self.shared is not None or (self.layers and self.layers[0][0].shape[0] != 1):
            raise ValueError("only a batch-1 context without a shared part can be branched")
        return PastKV([], self.length, self)

    def cast(self, dtype: torch.dtype) -> PastKV:
        """This cache in ``dtype`` (a copy; itself when it already is)."""
        if not self.layers or self.layers[0][0].dtype == dtype:
            return self
        return PastKV([(k.to(dtype), v.to(dtype)) for k, v in self.layers], self.length,
                      self.shared and self.shared.cast(dtype))

    def prefix(self, length: int) -> PastKV:
        """The cache of the first ``length`` positions (no shared part)."""
        if self.shared is not None:
            raise ValueError("a cache with a shared part has no prefix of its own")
        return PastKV([(k[:, :, :length], v[:, :, :length]) for k, v in self.layers], length)

    def select(self, rows: torch.Tensor) -> PastKV:
        """The cache of the rows ``rows`` (in that order; the shared part stays shared)."""
        return PastKV([(k[rows], v[rows]) for k, v in self.layers], self.length, self.shared)


class ContextCache:
    """The keys and values of the last context a causal model read, and its last logits:
    a context that shares a prefix with it (it grew, or a later hole of the same document)
    costs only the tokens after that prefix."""

    def __init__(self, model, device: torch.device | str | None = None) -> None:
        self.model = model
        #: Where the context's ids go (``None``: where the model's embeddings are).
        self.device = device
        self._ids: list[int] = []
        self._past: PastKV | None = None
        self._last: torch.Tensor | None = None

    @torch.inference_mode()
    def read(self, context: list[int]) -> tuple[PastKV, torch.Tensor]:
        """``context``'s cache and the logits ``[vocab]`` of the token after it."""
        same = 0
        for a, b in zip(self._ids, context, strict=False):
            if a != b:
                break
            same += 1
        if same == len(context) == len(self._ids) and self._last is not None:
            return self._past, self._last
        keep = min(same, len(context) - 1)
        past = self._past.prefix(keep) if keep and self._past is not None else None
        device = self.device or self.model.embed_tokens.weight.device
        ids = torch.tensor([context[keep:]], dtype=torch.long, device=device)
        logits, self._past = self.model.extend(ids, past)
        self._ids, self._last = list(context), logits[0, -1]
        return self._past, self._last


def attend_after_shared(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                        shared_k: torch.Tensor, shared_v: torch.Tensor) -> torch.Tensor:
    """Causal attention of ``q`` ``[b, heads, n, d]`` over a batch-1 shared context
    (``[1, kv_heads, S, d]``, read by every row without expanding it) and the rows' own
    keys and values ``[b, kv_heads, m + n, d]`` (the last ``n`` are the queries' own)."""
    b, heads, n, d = q.shape
    groups = k.shape[1]
    qg = q.view(b, groups, heads // groups, n, d) * d**-0.5
    before = torch.einsum("bgrnd,gsd->bgrns", qg, shared_k[0])
    own = torch.einsum("bgrnd,bgmd->bgrnm", qg, k)
    m = k.shape[2] - n
    allowed = torch.ones(n, m + n, dtype=torch.bool, device=q.device).tril(m)
    own = own.masked_fill(~allowed, float("-inf"))
    weights = torch.softmax(torch.cat([before, own], dim=-1), dim=-1)
    s = before.shape[-1]
    out = (torch.einsum("bgrns,gsd->bgrnd", weights[..., :s], shared_v[0])
           + torch.einsum("bgrnm,bgmd->bgrnd", weights[..., s:], v))
    return out.reshape(b, heads, n, d)


class Attention(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        hd = cfg.head_dim
        self.num_heads, self.num_kv_heads, self.head_dim = cfg.num_heads, cfg.num_kv_heads, hd
        self.q_proj = nn.Linear(cfg.hidden_size, cfg.num_heads * hd, bias=cfg.qkv_bias)
        self.k_proj = nn.Linear(cfg.hidden_size, cfg.num_kv_heads * hd, bias=cfg.qkv_bias)
        self.v_proj = nn.Linear(cfg.hidden_size, cfg.num_kv_heads * hd, bias=cfg.qkv_bias)
        self.o_proj = nn.Linear(cfg.num_heads * hd, cfg.hidden_size, bias=False)
        self.qk_norm = cfg.qk_norm
        if cfg.qk_norm:
            self.q_norm = RMSNorm(hd, cfg.rms_eps)
            self.k_norm = RMSNorm(hd, cfg.rms_eps)
        self.future_bias = (
            None if cfg.future_bias is None
            else nn.Parameter(torch.full((cfg.num_heads,), float(cfg.future_bias)))
        )

    def start_future_bias(self, value: float, device: torch.device | str,
                          dtype: torch.dtype = torch.float32) -> nn.Parameter:
        """A fresh future bias of ``value`` for every head (replacing any), frozen."""
        self.future_bias = nn.Parameter(
            torch.full((self.num_heads,), float(value), device=device, dtype=dtype),
            requires_grad=False,
        )
        return self.future_bias

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, causal: bool,
        cache: KVCache | None = None, layer: int = 0, active: torch.Tensor | None = None,
        later: torch.Tensor | None = None, past: PastKV | None = None,
        grown: PastKV | None = None, allowed: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """With ``past``: a causal pass over tokens that follow ``past``'s, whose keys and
        values (``past``'s and their own) are appended to ``grown``. With ``cache`` and no
        ``active``: a full pass that stores this layer's keys and
        values. With ``active``: ``x`` holds only those rows; their fresh keys and values
        replace the cached ones and the other rows are read from the cache. ``later``
        (``[queries, keys]``, 1 where the key comes after the query) places the future
        bias. ``allowed`` (``[queries, keys]`` bool): which keys each query may read, in place
        of ``causal`` (SDAR's block-causal pattern)."""
        b, n, _ = x.shape
        q = self.q_proj(x).view(b, n, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, n, self.num_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, n, self.num_kv_heads, self.head_dim).transpose(1, 2)
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        if cache is not None and active is None:
            cache.layers.append((k, v))
        elif cache is not None:
            cached_k, cached_v = cache.layers[layer]
            k = cached_k.index_copy(2, active, k)
            v = cached_v.index_copy(2, active, v)
        if past is not None:
            if past.layers:
                pk, pv = past.layers[layer]
                k = torch.cat([pk.expand(b, -1, -1, -1), k], dim=2)
                v = torch.cat([pv.expand(b, -1, -1, -1), v], dim=2)
            if grown is not None:
                grown.layers.append((k, v))
            if past.shared is not None:
                shared_k, shared_v = past.shared.layers[layer]
                out = attend_after_shared(q, k, v, shared_k, shared_v)
                return self.o_proj(out.transpose(1, 2).reshape(b, n, -1))
            m = k.shape[2] - n
            allowed = torch.ones(n, m + n, dtype=torch.bool, device=x.device).tril(m)
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=allowed, enable_gqa=self.num_kv_heads != self.num_heads)
            return self.o_proj(out.transpose(1, 2).reshape(b, n, -1))
        mask = None
        if self.future_bias is not None and later is not None:
            mask = later.to(q.dtype)[None] * self.future_bias.to(q.dtype)[:, None, None]
        if allowed is not None:
            mask = allowed if mask is None else mask.masked_fill(~allowed, float("-inf"))
            causal = False
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=causal,
            enable_gqa=self.num_kv_heads != self.num_heads,
        )
        return self.o_proj(out.transpose(1, 2).reshape(b, n, -1))


class MLP(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Router(nn.Module):
    """The MoE gate: one score per expert, ``weight`` ``[experts, hidden]``.

    Not an ``nn.Linear`` on purpose: quantizers replace Linear layers, and the router's few
    weights decide which experts run at all, so they stay in the model's float dtype."""

    def __init__(self, hidden: int, experts: int, bias: bool = False,
                 keep_float32: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(experts, hidden))
        if bias:  # a sigmoid router's routing bias (``expert_bias``), loaded, never trained
            self.expert_bias = nn.Parameter(torch.zeros(experts), requires_grad=False)
        #: Loaded in float32 whatever the model's dtype (``weights.load_into`` reads it):
        #: a sigmoid router's choice turns on small differences of biased scores.
        self.keep_float32 = keep_float32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight)


class MoEFeedForward(nn.Module):
    """Top-k experts per token (``route``), their outputs summed by router weight, plus a
    shared expert every token runs where the config has one.

    Names follow OLMoE/LLaDA-MoE (``gate``, ``experts.N.{gate,up,down}_proj``,
    ``shared_experts``); each expert is the SwiGLU ``MLP`` at ``expert_intermediate_size``.
    Tokens are grouped by expert with one sort, so the only Python loop is over experts, each
    running once on all its tokens."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.top_k = cfg.experts_per_token
        self.norm_topk_prob = cfg.norm_topk_prob
        self.sigmoid = cfg.router == "sigmoid"
        self.groups, self.groups_per_token = cfg.expert_groups, cfg.groups_per_token
        self.routed_scale, self.router_bias = cfg.routed_scale, cfg.router_bias
        self.gate = Router(cfg.hidden_size, cfg.num_experts, bias=cfg.router_bias,
                           keep_float32=self.sigmoid)
        expert = replace(cfg, intermediate_size=cfg.expert_intermediate_size)
        self.experts = nn.ModuleList(MLP(expert) for _ in range(cfg.num_experts))
        self.shared_experts = (
            MLP(replace(cfg, intermediate_size=cfg.shared_expert_intermediate_size))
            if cfg.shared_expert_intermediate_size else None)
        #: Weights of one expert (gate, up, down), kept as a number: quantizers swap the
        #: expert Linear layers for packed ones whose shapes no longer say it.
        self.expert_parameters = 3 * cfg.hidden_size * cfg.expert_intermediate_size

    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(weights, experts)`` ``[tokens, k]`` for ``x`` ``[tokens, hidden]``: the top-k of
        the softmax over all experts, or of the sigmoid scores (``_sigmoid_choice``);
        renormalised with ``norm_topk_prob``, times ``routed_scale``."""
        if self.sigmoid:
            scores = torch.sigmoid(F.linear(x.float(), self.gate.weight.float()))
            experts = self._sigmoid_choice(scores)
            weights = scores.gather(1, experts)
        else:
            probs = F.softmax(self.gate(x), dim=-1, dtype=torch.float32)
            weights, experts = torch.topk(probs, self.top_k, dim=-1)
        if self.norm_topk_prob:
            weights = weights / (weights.sum(dim=-1, keepdim=True) + 1e-20)
        return (weights * self.routed_scale).to(x.dtype), experts

    def _sigmoid_choice(self, scores: torch.Tensor) -> torch.Tensor:
        """The experts a sigmoid router picks: by score plus ``expert_bias``, only within the
        ``groups_per_token`` groups whose two best biased scores sum highest."""
        choice = scores
        if self.router_bias:
            choice = scores + self.gate.expert_bias.float()
        if self.groups > 1:
            n, e = choice.shape
            grouped = choice.view(n, self.groups, e // self.groups)
            best = torch.topk(grouped.topk(2, dim=-1).values.sum(-1), self.groups_per_token,
                              dim=-1).indices
            keep = torch.zeros(n, self.groups, dtype=torch.bool, device=choice.device)
            keep.scatter_(1, best, True)
            choice = choice.masked_fill(~keep.repeat_interleave(e // self.groups, dim=1),
                                        float("-inf"))
        return torch.topk(choice, self.top_k, dim=-1).indices

    def idle_parameters(self) -> int:
        """Expert parameters a token does not use: those of the ``experts - k`` not chosen."""
        return (len(self.experts) - self.top_k) * self.expert_parameters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(-1, shape[-1])
        weights, experts = self.route(flat)
        chosen = experts.reshape(-1)  # [tokens * k], token t's choices at t*k .. t*k+k-1
        order = torch.argsort(chosen, stable=True)
        token = order // self.top_k
        weight = weights.reshape(-1)[order]
        counts = torch.bincount(chosen, minlength=len(self.experts)).tolist()
        out = torch.zeros_like(flat)
        start = 0
        for expert, count in zip(self.experts, counts, strict=True):
            if count:
                rows = token[start:start + count]
                y = expert(flat[rows]) * weight[start:start + count, None]
                out.index_add_(0, rows, y.to(out.dtype))
            start += count
        if self.shared_experts is not None:
            out = out + self.shared_experts(flat)
        return out.reshape(shape)


class Block(nn.Module):
    def __init__(self, cfg: TransformerConfig, index: int = 0) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_eps)
        moe = cfg.num_experts and index >= cfg.dense_layers
        self.mlp = MoEFeedForward(cfg) if moe else MLP(cfg)

    def forward(self, x, cos, sin, causal: bool, cache: KVCache | None = None, layer: int = 0,
                active: torch.Tensor | None = None, later: torch.Tensor | None = None,
                past: PastKV | None = None, grown: PastKV | None = None,
                allowed: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, causal, cache, layer, active,
                               later, past, grown, allowed)
        return x + self.mlp(self.post_attention_layernorm(x))


def forbid_untrained_rows(logits: torch.Tensor, tokens: int) -> torch.Tensor:
    """``-inf`` for vocabulary rows past the tokenizer's ``tokens`` (embedding matrices are
    padded to a multiple of 64 or 128; those rows were never trained and decode to nothing)."""
    if logits.shape[-1] > tokens:
        logits[..., tokens:] = float("-inf")
    return logits


class Transformer(nn.Module):
    """Parameter names follow transformers' Llama without the ``model.`` prefix."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(Block(cfg, i) for i in range(cfg.num_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_eps)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.embed_tokens.weight

    def hidden(
        self, ids: torch.Tensor, causal: bool = False, cache: KVCache | None = None,
        active: torch.Tensor | None = None, allowed: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Final-norm hidden states ``[batch, length, hidden]``.

        ``allowed`` (``[length, length]`` bool, True where query row may read key column)
        replaces the causal/bidirectional choice: SDAR's block-causal attention.

        With an empty ``cache`` the pass fills it; with a filled one and sorted ``active``
        positions only those rows are computed (``[batch, len(active), hidden]``).
        """
        cos, sin = rotary(ids.shape[1], self.cfg.rotary_width, self.cfg.rope_theta, ids.device,
                          self.cfg.rope_position_scale)
        later = None  # where keys come after queries: the same for every layer
        if not causal and self.layers[0].self_attn.future_bias is not None:
            keys = torch.arange(ids.shape[1], device=ids.device)
            queries = keys if active is None else active
            later = keys[None, :] > queries[:, None]
        if active is not None:
            if cache is None or not cache.layers:
                raise ValueError("active rows need a cache filled by a full pass")
            ids, cos, sin = ids[:, active], cos[active], sin[active]
            allowed = None if allowed is None else allowed[active]
        x = self.embed_tokens(ids)
        if self.cfg.embed_scale != 1.0:
            x = x * self.cfg.embed_scale
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, causal, cache, i, active, later, allowed=allowed)
        return self.norm(x)

    def extend(self, ids: torch.Tensor, past: PastKV | None = None) -> tuple[torch.Tensor, PastKV]:
        """Causal logits of ``ids`` ``[batch, n]`` continuing ``past`` (``None``: from the
        start), and the grown key/value cache, for left-to-right decoding and scoring."""
        past = past or PastKV()
        start, n = past.length, ids.shape[1]
        cos, sin = rotary(start + n, self.cfg.rotary_width, self.cfg.rope_theta, ids.device,
                          self.cfg.rope_position_scale)
        cos, sin = cos[start:], sin[start:]
        grown = PastKV(length=start + n, shared=past.shared)
        x = self.embed_tokens(ids)
        if self.cfg.embed_scale != 1.0:
            x = x * self.cfg.embed_scale
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, True, None, i, None, None, past, grown)
        logits = self.lm_head(self.norm(x))
        if self.cfg.logit_scale != 1.0:
            logits = logits * self.cfg.logit_scale
        return logits, grown

    def forward(
        self, ids: torch.Tensor, rows: torch.Tensor | None = None, causal: bool = False,
        cache: KVCache | None = None, active: torch.Tensor | None = None,
        allowed: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits for every position, or only for ``rows`` (the head is a fifth of a small
        model's compute, so skipping it where nobody reads it pays). ``rows`` are absolute
        positions; with ``active`` they must be among the active rows."""
        h = self.hidden(ids, causal, cache, active, allowed)
        if rows is not None:
            if active is not None:
                rows = torch.searchsorted(active, rows)
            h = h[:, rows]
        logits = self.lm_head(h)
        if self.cfg.logit_scale != 1.0:
            logits = logits * self.cfg.logit_scale
        return logits

    def tie_weights(self) -> None:
        if self.cfg.tie_embeddings:
            self.lm_head.weight = self.embed_tokens.weight
