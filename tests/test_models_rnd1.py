"""RND1: a tiny checkpoint in RND1-Base-0910's own format, loaded through auto-detection,
checked against transformers' Qwen3-MoE run without a causal mask, the shift by one
realigned."""

import json

import pytest
import torch
from family_checks import (
    check_fill,
    check_interface,
    check_shapes,
    doctor_rows,
    qwen3_moe_reference,
)
from tiny_families import build_tiny_rnd1

from infill.models import ModelLoadError, detect_family, load_denoiser
from infill.models.runtime.weights import iter_tensors


@pytest.fixture(scope="module")
def rnd1_dir(tmp_path_factory):
    return build_tiny_rnd1(tmp_path_factory.mktemp("rnd1") / "RND1-Base-tiny", seed=9)


@pytest.fixture(scope="module")
def rnd1(rnd1_dir):
    return load_denoiser(rnd1_dir, device="cpu")


@pytest.fixture(scope="module")
def reference(rnd1_dir):
    return qwen3_moe_reference(rnd1_dir)


def test_detected_and_loaded_with_qwen3_moe_names(rnd1_dir, rnd1):
    assert detect_family(rnd1_dir).family == "rnd1"
    names = {n for n, _ in iter_tensors(rnd1_dir)}
    assert {"model.embed_tokens.weight", "model.layers.1.mlp.gate.weight",
            "model.layers.1.mlp.experts.7.down_proj.weight",
            "model.layers.0.self_attn.q_norm.weight", "lm_head.weight"} <= names
    check_interface(rnd1, "rnd1")
    assert rnd1.model.layers[0].mlp.norm_topk_prob


def test_mask_past_the_tokenizer_bos_frame_and_ends(rnd1, rnd1_dir):
    config = json.loads((rnd1_dir / "config.json").read_text())
    assert rnd1.mask_id == config["mask_token_id"] == len(rnd1.tokenizer)
    assert rnd1.prefix_ids == (config["bos_token_id"],) and rnd1.suffix_ids == ()
    assert config["eos_token_id"] in rnd1.end_ids
    assert rnd1.expand_id is None


def test_matches_transformers_qwen3_moe_without_a_causal_mask_shifted_by_one(rnd1, reference):
    n = len(rnd1.tokenizer)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, n, (2, 13), generator=gen)
    ids[:, 5:8] = rnd1.mask_id
    with torch.inference_mode():
        bidir = reference(ids, attention_mask=torch.ones(2, 1, 13, 13, dtype=torch.bool)).logits
    torch.testing.assert_close(rnd1.raw_logits(ids)[..., :n], bidir[..., :n],
                               rtol=1e-4, atol=1e-4)
    ours = rnd1.logits(ids)[..., :n]
    torch.testing.assert_close(ours[:, 1:], bidir[:, :-1, :n], rtol=1e-4, atol=1e-4)
    for i in (5, 6, 7):  # row i scores token i only after the realignment
        assert not torch.allclose(ours[:, i], bidir[:, i, :n], atol=1e-3)
    # the mask row is past the tokenizer: never proposed
    assert torch.isinf(rnd1.logits(ids)[..., rnd1.mask_id]).all()


def test_shapes_and_fill_stay_inside_the_holes(rnd1):
    check_shapes(rnd1)
    check_fill(rnd1)


def test_refusals(tmp_path, rnd1_dir):
    import shutil

    bad = tmp_path / "RND1-odd"
    shutil.copytree(rnd1_dir, bad)
    config = json.loads((bad / "config.json").read_text())
    for change, why in [({"mlp_only_layers": [0]}, "dense layers"),
                        ({"attention_bias": True}, "attention_bias")]:
        (bad / "config.json").write_text(json.dumps(config | change))
        with pytest.raises(ModelLoadError, match=why):
            load_denoiser(bad, device="cpu")


def test_doctor_names_family_size_and_active_experts(rnd1_dir, capsys):
    rows, out = doctor_rows(rnd1_dir, capsys)
    assert rows["family"] == "rnd1"
    params = sum(t.numel() for _, t in iter_tensors(rnd1_dir))
    assert rows["parameters"].startswith(f"{params:,}")
    c = json.loads((rnd1_dir / "config.json").read_text())
    idle = c["num_hidden_layers"] * (c["num_experts"] - c["num_experts_per_tok"]) * 3 \
        * c["hidden_size"] * c["moe_intermediate_size"]
    assert rows["active"].startswith(f"{params - idle:,} parameters per token")
