"""SDAR: a tiny checkpoint in SDAR-4B-Chat's own format, loaded through auto-detection, checked
against transformers' Qwen3 run with SDAR's block-causal mask."""

import json

import pytest
import torch
from family_checks import check_fill, check_interface, check_shapes, doctor_rows
from tiny_families import build_tiny_sdar

from infill.models import ModelLoadError, detect_family, load_denoiser
from infill.models.families.sdar import block_causal, fim_order
from infill.models.runtime.weights import iter_tensors
from infill.types import CachedDenoiser


@pytest.fixture(scope="module")
def sdar_dir(tmp_path_factory):
    return build_tiny_sdar(tmp_path_factory.mktemp("sdar") / "SDAR-tiny", seed=5)


@pytest.fixture(scope="module")
def sdar(sdar_dir):
    return load_denoiser(sdar_dir, device="cpu")


@pytest.fixture(scope="module")
def qwen3(sdar_dir):
    """transformers' own Qwen3 with the checkpoint's weights: the independent reference."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    c = json.loads((sdar_dir / "config.json").read_text())
    cfg = Qwen3Config(
        vocab_size=c["vocab_size"], hidden_size=c["hidden_size"],
        intermediate_size=c["intermediate_size"], num_hidden_layers=c["num_hidden_layers"],
        num_attention_heads=c["num_attention_heads"], head_dim=c["head_dim"],
        num_key_value_heads=c["num_key_value_heads"], rms_norm_eps=c["rms_norm_eps"],
        rope_parameters={"rope_type": "default", "rope_theta": c["rope_theta"]},
        max_position_embeddings=c["max_position_embeddings"], tie_word_embeddings=False,
        attention_bias=False, attn_implementation="sdpa",
    )
    ref = Qwen3ForCausalLM(cfg).eval()
    missing, unexpected = ref.load_state_dict(dict(iter_tensors(sdar_dir)), strict=False)
    assert not missing and not unexpected  # SDAR's names are Qwen3's
    return ref


def ref_logits(ref, ids: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return ref(ids, attention_mask=allowed[None, None]).logits


def generate_py_mask(length: int, block: int, offset: int = 0) -> torch.Tensor:
    """SDAR ``generate.py``'s mask: ``tril(ones(blocks, blocks))`` repeated ``block`` times
    along both axes (``offset`` shifts the block boundaries: the off-by-one to catch)."""
    blocks = (length + offset + block - 1) // block
    m = torch.tril(torch.ones(blocks, blocks)).repeat_interleave(block, 0)
    m = m.repeat_interleave(block, 1).bool()
    return m[offset:offset + length, offset:offset + length]


def test_detected_and_loaded_with_qwen3_names(sdar_dir, sdar):
    assert detect_family(sdar_dir).family == "sdar"
    names = {n for n, _ in iter_tensors(sdar_dir)}
    assert {"model.layers.0.self_attn.q_norm.weight", "model.layers.1.self_attn.k_norm.weight",
            "lm_head.weight"} <= names
    assert not any(n.endswith("_proj.bias") for n in names)  # Qwen3: no q/k/v/o biases
    assert (sdar_dir / "model.safetensors.index.json").exists()
    check_interface(sdar, "sdar")
    # head_dim from the config, not hidden/heads (SDAR-4B: 2560 hidden, 32 heads of 128)
    assert sdar.model.layers[0].self_attn.q_proj.out_features == 4 * 32
    # an exact block cache, which under FIM keeps nothing: the layout moves as edges commit
    assert isinstance(sdar, CachedDenoiser) and sdar.fim
    m = sdar.mask_id
    assert sdar.prefill(torch.tensor([[11, m, m, 12]]), torch.tensor([1, 2]))[1] is None
    text = "def add(a, b):\n    return a + b\n"
    assert sdar.tokenizer.decode(sdar.tokenizer(text)["input_ids"]) == text


def test_mask_block_fim_tokens_and_plain_framing(sdar, sdar_dir):
    config = json.loads((sdar_dir / "config.json").read_text())
    tok = sdar.tokenizer
    assert sdar.mask_id == config["mask_token_id"]
    assert tok.convert_ids_to_tokens(sdar.mask_id) == "<|MASK|>"
    assert sdar.block_size == config["block_size"] == 4
    assert sdar.fim and sdar.fim_ids == tuple(
        tok.convert_tokens_to_ids(t) for t in ("<|fim_prefix|>", "<|fim_suffix|>",
                                               "<|fim_middle|>"))
    assert sdar.prefix_ids == () and sdar.suffix_ids == ()  # Qwen3 has no BOS
    assert sdar.end_ids == frozenset({config["eos_token_id"]})


def test_the_block_causal_mask_is_generate_py_s():
    for n in (1, 4, 7, 8, 13):
        assert torch.equal(block_causal(n, 4, "cpu"), generate_py_mask(n, 4))
    assert not torch.equal(block_causal(8, 4, "cpu"), generate_py_mask(8, 4, offset=1))


def test_logits_match_transformers_qwen3_with_the_block_causal_mask(sdar, qwen3):
    n = len(sdar.tokenizer)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, n, (2, 11), generator=gen)
    ours = sdar.raw_logits(ids)[..., :n]
    want = ref_logits(qwen3, ids, generate_py_mask(11, 4))[..., :n]
    torch.testing.assert_close(ours, want, rtol=1e-4, atol=1e-4)
    # The pattern matters: causal, bidirectional and blocks off by one all give other logits.
    for other in (torch.ones(11, 11).tril().bool(), torch.ones(11, 11, dtype=torch.bool),
                  generate_py_mask(11, 4, offset=1)):
        assert not torch.allclose(ours, ref_logits(qwen3, ids, other)[..., :n], atol=1e-3)


def test_not_shifted_row_i_scores_token_i(sdar, qwen3, monkeypatch):
    monkeypatch.setattr(sdar, "fim", False)  # the canvas as the model reads it
    n = len(sdar.tokenizer)
    m = sdar.mask_id
    ids = torch.tensor([[11, 12, 13, m, m, m, 14, 15, 16]])
    want = ref_logits(qwen3, ids, generate_py_mask(9, 4))[..., :n]
    got = sdar.logits(ids)[..., :n]
    for i in range(ids.shape[1]):
        torch.testing.assert_close(got[:, i], want[:, i], rtol=1e-4, atol=1e-4)
    for i in (3, 4, 5):
        assert not torch.allclose(got[:, i], want[:, i - 1], atol=1e-3)  # a shift fails here
    rows = sdar.logits(ids, positions=torch.tensor([3, 5]))
    torch.testing.assert_close(rows, sdar.logits(ids)[:, [3, 5]], rtol=1e-5, atol=1e-5)


def test_a_token_sees_its_own_block_and_earlier_ones_only(sdar, monkeypatch):
    monkeypatch.setattr(sdar, "fim", False)
    m = sdar.mask_id
    ids = torch.tensor([[11, 12, 13, 14, m, m, m, 15, 16, 17, 18, 19]])
    base = sdar.logits(ids)
    later = ids.clone()
    later[0, 8] = 20  # first token of block 2
    after = sdar.logits(later)
    torch.testing.assert_close(after[:, :8], base[:, :8])  # blocks 0 and 1 cannot see it
    same = ids.clone()
    same[0, 7] = 20  # last token of block 1, after the masks but in their block
    after = sdar.logits(same)
    assert not torch.allclose(after[:, 4], base[:, 4])  # bidirectional inside a block
    torch.testing.assert_close(after[:, :4], base[:, :4])


def test_fim_layout_puts_the_suffix_before_the_hole(sdar):
    p, s, mid = sdar.fim_ids
    m = sdar.mask_id
    ids = torch.tensor([[11, 12, m, 13, m, 14, 15]])
    model_ids, rows = sdar.layout(ids)
    assert model_ids.tolist() == [[p, 11, 12, s, 14, 15, mid, m, 13, m]]
    assert model_ids[0, rows[0]].tolist() == ids[0].tolist()  # every canvas row maps back
    # a frame stays outside: head first, tail last
    assert fim_order([1, 2, m, 3, 4], m, head=1, tail=1) == [0, 5, 1, 6, 3, 7, 2, 4]
    assert fim_order([1, 2], m, head=1, tail=0) == [0, 2, 1, 3, 4]  # no hole: empty middle


def test_the_suffix_reaches_the_hole_through_fim_only(sdar, qwen3, monkeypatch):
    n = len(sdar.tokenizer)
    m = sdar.mask_id
    ids = torch.tensor([[11, 12, 13, m, m, 14, 15, 16, 17, 18, 19, 20]])
    model_ids, rows = sdar.layout(ids)
    want = ref_logits(qwen3, model_ids, generate_py_mask(model_ids.shape[1], 4))
    torch.testing.assert_close(sdar.logits(ids)[..., :n], want[0, rows[0]][None, :, :n],
                               rtol=1e-4, atol=1e-4)
    edited = ids.clone()
    edited[0, 11] = 30  # far in the suffix
    assert not torch.allclose(sdar.logits(edited)[:, 3], sdar.logits(ids)[:, 3], atol=1e-4)
    monkeypatch.setattr(sdar, "fim", False)
    torch.testing.assert_close(sdar.logits(edited)[:, 3:5], sdar.logits(ids)[:, 3:5])


def test_fim_can_be_switched_off(sdar_dir, monkeypatch):
    monkeypatch.setenv("LACUNA_SDAR_FIM", "0")
    den = load_denoiser(sdar_dir, device="cpu")
    assert not den.fim and "prefix completion only" in den.infill_support
    ids = torch.tensor([[11, den.mask_id, 12]])
    assert den.layout(ids)[0].tolist() == ids.tolist()


def test_shapes_and_fill_stay_inside_the_holes(sdar):
    check_shapes(sdar)
    check_fill(sdar)


def test_chat_checkpoint_frames_a_non_thinking_reply(tmp_path):
    path = build_tiny_sdar(tmp_path / "SDAR-4B-Chat", instruct=True)
    den = load_denoiser(path, device="cpu")
    tok = den.tokenizer
    assert den.instruct
    head = tok.decode(list(den.prefix_ids))
    assert head.startswith("<|im_start|>user\n")
    assert head.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert tok.decode(list(den.suffix_ids)) == "<|im_end|>"
    assert tok.convert_tokens_to_ids("<|im_end|>") in den.end_ids
    m = den.mask_id
    canvas = [*den.prefix_ids, 11, m, 12, *den.suffix_ids]
    model_ids, _ = den.layout(torch.tensor([canvas]))
    p, s, mid = den.fim_ids
    assert model_ids[0].tolist() == [*den.prefix_ids, p, 11, s, 12, mid, m, *den.suffix_ids]
    check_fill(den)


def test_refusals(tmp_path, sdar_dir):
    import shutil

    moe = tmp_path / "SDAR-30B-A3B-Chat"
    shutil.copytree(sdar_dir, moe)
    config = json.loads((moe / "config.json").read_text())
    config.update(model_type="sdar_moe", architectures=["SDARMoeForCausalLM"], num_experts=8)
    (moe / "config.json").write_text(json.dumps(config))
    assert detect_family(moe).family == "sdar"
    with pytest.raises(ModelLoadError, match="mixture-of-experts"):
        load_denoiser(moe, device="cpu")
    config.update(model_type="sdar", architectures=["SDARForCausalLM"], num_experts=None,
                  attention_bias=True)
    (moe / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="attention_bias"):
        load_denoiser(moe, device="cpu")


def test_doctor_names_family_size_quant_memory_and_what_it_can_do(sdar_dir, capsys):
    rows, out = doctor_rows(sdar_dir, capsys)
    assert rows["family"] == "sdar"
    params = sum(t.numel() for _, t in iter_tensors(sdar_dir))
    assert rows["parameters"] == f"{params:,}"
    assert "float32" in rows["dtype"] and "quant" in rows and "memory" in out
    assert "block-causal, blocks of 4" in out
    assert "FIM context before the hole" in out and "best effort" in out


def test_sampling_with_the_cache_gives_the_same_fill_with_fim_and_without(sdar, monkeypatch):
    from infill.sample import sample
    from infill.types import SamplingOptions

    m = sdar.mask_id
    ids, holes = [11, 12, 13, 14, 15] + [m] * 6 + [16, 17], list(range(5, 11))
    for fim in (True, False):
        monkeypatch.setattr(sdar, "fim", fim)
        cached = sample(sdar, ids, holes, SamplingOptions(steps=6, cache=True))
        plain = sample(sdar, ids, holes, SamplingOptions(steps=6, cache=False))
        assert cached.ids.tolist() == plain.ids.tolist()
