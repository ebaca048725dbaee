"""LLaDA-MoE: a tiny checkpoint in LLaDA-MoE-7B-A1B's own format, loaded through
auto-detection, checked against transformers' Qwen3-MoE and a direct computation of one MoE
layer."""

import json

import pytest
import torch
import torch.nn.functional as F
from family_checks import check_fill, check_interface, check_shapes, qwen3_moe_reference
from tiny_families import build_tiny_llada, build_tiny_llada_moe

from infill.models import detect_family, load_denoiser
from infill.models.runtime.report import describe
from infill.models.runtime.weights import ModelLoadError, iter_tensors


@pytest.fixture(scope="module")
def moe_dir(tmp_path_factory):
    return build_tiny_llada_moe(tmp_path_factory.mktemp("llada-moe-base"), seed=4)


@pytest.fixture(scope="module")
def moe(moe_dir):
    return load_denoiser(moe_dir, device="cpu")


@pytest.fixture(scope="module")
def config(moe_dir):
    return json.loads((moe_dir / "config.json").read_text())


def test_detected_apart_from_dense_llada_though_both_say_model_type_llada(
        moe_dir, moe, config, tmp_path):
    assert config["model_type"] == "llada"
    assert detect_family(moe_dir).family == "llada-moe"
    assert detect_family(build_tiny_llada(tmp_path / "dense")).family == "llada"
    names = {n for n, _ in iter_tensors(moe_dir)}
    assert {"model.layers.1.mlp.gate.weight", "model.layers.1.mlp.experts.7.down_proj.weight",
            "model.layers.0.self_attn.q_norm.weight", "model.embed_tokens.weight",
            "lm_head.weight"} <= names
    assert (moe_dir / "model.safetensors.index.json").exists()
    check_interface(moe, "llada-moe")


def test_mask_end_and_plain_framing(moe, config):
    assert moe.mask_id == config["mask_token_id"]
    assert moe.tokenizer.convert_ids_to_tokens(moe.mask_id) == "<|mask|>"
    assert not moe.instruct
    assert moe.prefix_ids == (config["bos_token_id"],) and moe.suffix_ids == ()
    assert config["eos_token_id"] in moe.end_ids
    assert moe.tokenizer.convert_tokens_to_ids("<|role_end|>") in moe.end_ids


@pytest.fixture(scope="module")
def reference(moe_dir):
    # the checkpoint's own code ignores config.norm_topk_prob: the top-k used as they are
    return qwen3_moe_reference(moe_dir, expert_key="expert_intermediate_size",
                               norm_topk_prob=False)


@pytest.fixture(scope="module")
def ids(moe):
    gen = torch.Generator().manual_seed(0)
    return torch.randint(0, len(moe.tokenizer), (2, 13), generator=gen)


def test_matches_transformers_qwen3_moe_with_a_bidirectional_mask(moe, reference, ids):
    n = len(moe.tokenizer)
    with torch.inference_mode():
        bidir = reference(ids, attention_mask=torch.ones(2, 1, 13, 13, dtype=torch.bool)).logits
        causal = reference(ids).logits
    torch.testing.assert_close(moe.logits(ids)[..., :n], bidir[..., :n], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(moe.model(ids, causal=True), causal, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(causal, bidir, atol=1e-3)  # the mask matters: both ways


def test_logits_are_not_shifted_row_i_scores_token_i(moe, reference, ids):
    check_shapes(moe)
    n = len(moe.tokenizer)
    with torch.inference_mode():
        want = reference(ids, attention_mask=torch.ones(2, 1, 13, 13, dtype=torch.bool)).logits
    got = moe.logits(ids)[..., :n]
    for i in range(ids.shape[1]):
        torch.testing.assert_close(got[:, i], want[:, i, :n], rtol=1e-4, atol=1e-4)
    assert not torch.allclose(got[:, 1:], want[:, :-1, :n], atol=1e-3)  # off by one fails
    rows = moe.logits(ids, positions=torch.tensor([0, 5]))[..., :n]
    torch.testing.assert_close(rows, want[:, [0, 5], :n], rtol=1e-4, atol=1e-4)
    assert torch.isinf(moe.logits(ids)[..., n:]).all()  # padded vocabulary rows


def one_moe_layer_by_hand(block, x):
    """The MoE feed-forward for each token on its own: softmax over the router's scores,
    the k largest probabilities as they are, the weighted sum of those experts' SwiGLUs."""
    out = torch.zeros_like(x)
    for t in range(x.shape[0]):
        probs = F.softmax(block.gate.weight @ x[t], dim=-1)
        top = torch.topk(probs, block.top_k)
        for p, e in zip(top.values, top.indices.tolist(), strict=True):
            ex = block.experts[e]
            h = F.silu(ex.gate_proj.weight @ x[t]) * (ex.up_proj.weight @ x[t])
            out[t] += p * (ex.down_proj.weight @ h)
    return out


def test_one_moe_layer_equals_the_computation_by_hand(moe, config):
    block = moe.model.layers[0].mlp
    x = torch.randn(40, config["hidden_size"], generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        got = block(x[None])[0]
        want = one_moe_layer_by_hand(block, x)
        _, chosen = block.route(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert len(set(chosen.flatten().tolist())) == config["num_experts"]  # all experts run
    block.norm_topk_prob = True  # Qwen2-MoE's renormalisation is a different network
    try:
        with torch.inference_mode():
            assert not torch.allclose(block(x[None])[0], want, atol=1e-3)
    finally:
        block.norm_topk_prob = False


def test_doctor_names_the_family_and_total_and_active_parameters(moe, moe_dir, config, capsys):
    from lacuna.cli import main

    hidden, layers = config["hidden_size"], config["num_hidden_layers"]
    idle = layers * (config["num_experts"] - config["num_experts_per_tok"]) * 3 * hidden \
        * config["expert_intermediate_size"]
    info = describe(moe)
    total = sum(t.numel() for _, t in iter_tensors(moe_dir))
    assert info["parameters"] == total and info["active_parameters"] == total - idle
    assert main(["doctor", "--model", str(moe_dir), "--quant", "torch-int8"]) == 0
    out = capsys.readouterr().out
    assert "family         llada-moe" in out
    assert f"parameters     {total:,}" in out
    assert f"active         {total - idle:,} parameters per token" in out
    assert "quant          torch-int8" in out and "dtype          float32" in out
    # every expert's three Linear layers and the attention's four; router and head kept
    assert f"{layers * (4 + 3 * config['num_experts'])} Linear layers" in out
    assert "memory after" in out


def test_fill_stays_inside_the_holes(moe):
    check_fill(moe)


def test_instruct_checkpoint_poses_the_fill_as_a_bailing_chat_turn(tmp_path):
    den = load_denoiser(build_tiny_llada_moe(tmp_path / "LLaDA-MoE-7B-A1B-Instruct",
                                             instruct=True), device="cpu")
    tok = den.tokenizer
    assert den.instruct
    head = tok.decode(list(den.prefix_ids))
    assert head.startswith("<role>HUMAN</role>") and head.endswith("<role>ASSISTANT</role>")
    assert tok.decode(list(den.suffix_ids)) == "<|role_end|>"
    check_fill(den)


@pytest.mark.parametrize(("key", "value", "named"), [
    ("shared_expert_intermediate_size", 64, "shared_expert_intermediate_size=64"),
    ("moe_layer_freq", [0, 1], "moe_layer_freq"),
    ("moe_router_enable_expert_bias", True, "moe_router_enable_expert_bias"),
    ("partial_rotary_factor", 0.5, "partial_rotary_factor=0.5"),
])
def test_layouts_no_released_checkpoint_uses_are_refused_by_name(moe_dir, config, tmp_path,
                                                                 key, value, named):
    (tmp_path / "config.json").write_text(json.dumps({**config, key: value}))
    assert detect_family(tmp_path).family == "llada-moe"
    with pytest.raises(ModelLoadError, match=named):
        load_denoiser(tmp_path, device="cpu")


def test_dual_cache_recomputes_only_the_active_rows(moe, ids):
    """Fast-dLLM's cache: unchanged ids and active rows give the full pass's logits, and a
    token changed in the active block changes them (the experts see the new row)."""
    positions = torch.tensor([4, 5, 6])
    full, cache = moe.prefill(ids, positions)
    again = moe.cached_logits(ids, positions, cache, active=positions)
    torch.testing.assert_close(again, full, rtol=1e-4, atol=1e-4)
    changed = ids.clone()
    changed[:, 5] = (changed[:, 5] + 1) % len(moe.tokenizer)
    assert not torch.allclose(moe.cached_logits(changed, positions, cache, active=positions),
                              full, atol=1e-3)
