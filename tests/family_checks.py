"""Checks every model family must pass, shared by the tests/test_models_*.py files."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from infill.edits import apply_edits, edits_from_result
from infill.engine import fill
from infill.types import Denoiser, Hole, InfillRequest, Length, SamplingOptions

DOC = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n"


def check_interface(den: Denoiser, family: str) -> None:
    """The Denoiser protocol, with the attributes ``lacuna doctor`` reads."""
    assert isinstance(den, Denoiser)
    assert den.family == family
    assert isinstance(den.device, torch.device) and isinstance(den.dtype, torch.dtype)
    assert isinstance(den.model, torch.nn.Module)
    assert den.mask_id not in den.end_ids
    assert den.max_length > 64


def check_shapes(den: Denoiser) -> torch.Tensor:
    """Full and row-selected logits agree and have ``[batch, length|rows, vocab]`` shape."""
    body = den.tokenizer("x = 1\n", add_special_tokens=False)["input_ids"]
    ids = torch.tensor([[*den.prefix_ids, *body, den.mask_id, den.mask_id, *body,
                         *den.suffix_ids]])
    holes = torch.tensor([len(den.prefix_ids) + len(body), len(den.prefix_ids) + len(body) + 1])
    full = den.logits(ids)
    rows = den.logits(ids, positions=holes)
    assert full.dtype == torch.float32 and rows.dtype == torch.float32
    assert full.shape[:2] == ids.shape and rows.shape[:2] == (1, 2)
    assert full.shape[-1] == rows.shape[-1] >= len(den.tokenizer)
    torch.testing.assert_close(full[:, holes], rows, rtol=1e-4, atol=1e-4)
    return full


def check_fill(den: Denoiser) -> None:
    """Holes get exactly their tokens, no mask survives, nothing outside a hole changes."""
    first = DOC.index("a + b")
    second = DOC.index("a - b")
    holes = [Hole(first, first + 5, Length.exact(3)), Hole(second, second + 5, Length.auto(4))]
    req = InfillRequest(DOC, holes, options=SamplingOptions(steps=4, seed=3))
    result = fill(req, den)
    assert len(result.fills) == 2
    assert len(result.fills[0].token_ids) == 3
    assert len(result.fills[1].token_ids) + result.fills[1].trimmed == 4
    for f in result.fills:
        assert den.mask_id not in f.token_ids
    out = apply_edits(DOC, edits_from_result(result))
    head, tail = DOC[:first], DOC[second + 5:]
    middle = DOC[first + 5:second]
    assert out.startswith(head) and out.endswith(tail)
    assert middle in out[len(head):len(out) - len(tail)]
    again = fill(req, den)
    assert [f.text for f in again.fills] == [f.text for f in result.fills]  # deterministic


def qwen3_moe_reference(path: Path, *, expert_key: str = "moe_intermediate_size",
                        norm_topk_prob: bool | None = None):
    """transformers' Qwen3-MoE (per-head q/k norm, softmax top-k router) filled from a
    checkpoint in Qwen3-MoE's names (LLaDA-MoE, RND1): the per-expert tensors stacked into
    Qwen3-MoE's fused ones here; ``expert_key`` names the experts' width in the config."""
    from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM

    from infill.models.runtime.weights import iter_tensors

    c = json.loads((path / "config.json").read_text())
    cfg = Qwen3MoeConfig(
        vocab_size=c["vocab_size"], hidden_size=c["hidden_size"],
        num_hidden_layers=c["num_hidden_layers"], num_attention_heads=c["num_attention_heads"],
        num_key_value_heads=c["num_key_value_heads"], rms_norm_eps=c["rms_norm_eps"],
        head_dim=c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"],
        max_position_embeddings=c["max_position_embeddings"],
        rope_parameters={"rope_type": "default", "rope_theta": float(c["rope_theta"])},
        num_experts=c["num_experts"], num_experts_per_tok=c["num_experts_per_tok"],
        moe_intermediate_size=c[expert_key],
        norm_topk_prob=c.get("norm_topk_prob", False) if norm_topk_prob is None
        else norm_topk_prob,
        decoder_sparse_step=1, tie_word_embeddings=False, attn_implementation="sdpa",
    )
    ref = Qwen3MoeForCausalLM(cfg).eval()
    tensors = dict(iter_tensors(path))
    # Everything but the experts has Qwen3-MoE's names already (router: mlp.gate.weight).
    state = {name: t for name, t in tensors.items() if ".mlp.experts." not in name}
    for i in range(c["num_hidden_layers"]):
        e = [f"model.layers.{i}.mlp.experts.{x}." for x in range(c["num_experts"])]
        state[f"model.layers.{i}.mlp.experts.gate_up_proj"] = torch.stack(
            [torch.cat([tensors[p + "gate_proj.weight"], tensors[p + "up_proj.weight"]])
             for p in e])
        state[f"model.layers.{i}.mlp.experts.down_proj"] = torch.stack(
            [tensors[p + "down_proj.weight"] for p in e])
    missing, unexpected = ref.load_state_dict(state, strict=False)
    assert not missing and not unexpected
    return ref


def doctor_rows(path: Path, capsys) -> tuple[dict[str, str], str]:
    """``lacuna doctor --model path`` on the CPU: its rows by name (values stripped), and
    the whole output."""
    from lacuna.cli import main

    assert main(["doctor", "--model", str(path), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    rows = dict(line.split(None, 1) for line in out.splitlines() if line.strip())
    return {k: v.strip() for k, v in rows.items()}, out
