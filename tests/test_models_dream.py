"""Dream: a tiny checkpoint in Dream-v0's own format, loaded through auto-detection."""

import json

import pytest
import torch
from family_checks import check_fill, check_interface, check_shapes
from tiny_families import build_tiny_dream

from infill.models import detect_family, load_denoiser
from infill.models.runtime.weights import iter_tensors


@pytest.fixture(scope="module")
def dream_dir(tmp_path_factory):
    return build_tiny_dream(tmp_path_factory.mktemp("dream-base"), seed=2)


@pytest.fixture(scope="module")
def dream(dream_dir):
    return load_denoiser(dream_dir, device="cpu")


def test_detected_and_loaded_with_the_qwen2_bpe_files(dream_dir, dream):
    assert detect_family(dream_dir).family == "dream"
    assert not (dream_dir / "tokenizer.json").exists()  # Dream ships vocab.json + merges.txt
    assert {"model.layers.0.self_attn.q_proj.bias", "lm_head.weight"} <= {
        n for n, _ in iter_tensors(dream_dir)}
    check_interface(dream, "dream")
    text = "def add(a, b):\n    return a + b\n"
    assert dream.tokenizer.decode(dream.tokenizer(text)["input_ids"]) == text


def test_mask_and_plain_framing(dream, dream_dir):
    config = json.loads((dream_dir / "config.json").read_text())
    assert dream.mask_id == config["mask_token_id"]
    assert dream.tokenizer.convert_ids_to_tokens(dream.mask_id) == "<|mask|>"
    assert dream.prefix_ids == (config["bos_token_id"],) and dream.suffix_ids == ()
    assert dream.end_ids == frozenset({config["eos_token_id"]})


def test_shift_is_realigned_row_i_scores_token_i(dream):
    check_shapes(dream)
    ids = torch.tensor([[dream.prefix_ids[0], 11, 12, dream.mask_id, dream.mask_id, 13, 14]])
    raw = dream.raw_logits(ids)
    aligned = dream.logits(ids)
    for i in range(1, ids.shape[1]):
        torch.testing.assert_close(aligned[:, i], raw[:, i - 1])  # off by one fails here
    assert not torch.allclose(aligned[:, 3], raw[:, 3])
    rows = dream.logits(ids, positions=torch.tensor([3, 4]))
    torch.testing.assert_close(rows, raw[:, [2, 3]])
    with pytest.raises(ValueError, match="position 0"):
        dream.logits(ids, positions=torch.tensor([0]))


def test_matches_transformers_qwen2_with_a_bidirectional_mask(dream, dream_dir):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    c = json.loads((dream_dir / "config.json").read_text())
    cfg = Qwen2Config(
        vocab_size=c["vocab_size"], hidden_size=c["hidden_size"],
        intermediate_size=c["intermediate_size"], num_hidden_layers=c["num_hidden_layers"],
        num_attention_heads=c["num_attention_heads"],
        num_key_value_heads=c["num_key_value_heads"], rms_norm_eps=c["rms_norm_eps"],
        rope_parameters={"rope_type": "default", "rope_theta": c["rope_theta"]},
        max_position_embeddings=c["max_position_embeddings"], tie_word_embeddings=False,
        attn_implementation="sdpa",
    )
    ref = Qwen2ForCausalLM(cfg).eval()
    missing, unexpected = ref.load_state_dict(dict(iter_tensors(dream_dir)), strict=False)
    assert not missing and not unexpected  # Dream's names are Qwen2's
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, len(dream.tokenizer), (1, 9), generator=gen)
    n = len(dream.tokenizer)
    with torch.inference_mode():
        bidir = ref(ids, attention_mask=torch.ones(1, 1, 9, 9, dtype=torch.bool)).logits
        causal = ref(ids).logits
    torch.testing.assert_close(dream.raw_logits(ids)[..., :n], bidir[..., :n], rtol=1e-4,
                               atol=1e-4)
    torch.testing.assert_close(dream.model(ids, causal=True), causal, rtol=1e-4, atol=1e-4)


def test_fill_stays_inside_the_holes(dream):
    check_fill(dream)


def test_instruct_checkpoint_poses_the_fill_as_a_chat_turn(tmp_path):
    path = build_tiny_dream(tmp_path / "Dream-v0-Instruct-7B", instruct=True)
    den = load_denoiser(path, device="cpu")
    tok = den.tokenizer
    assert den.instruct
    head = tok.decode(list(den.prefix_ids))
    assert head.startswith("<|im_start|>system\n") and head.endswith("<|im_start|>assistant\n")
    assert tok.decode(list(den.suffix_ids)) == "<|im_end|>"
    assert tok.convert_tokens_to_ids("<|im_end|>") in den.end_ids
    check_fill(den)


def test_instruct_can_be_forced_off(tmp_path, monkeypatch):
    path = build_tiny_dream(tmp_path / "Dream-v0-Instruct-7B", instruct=True)
    monkeypatch.setenv("LACUNA_INSTRUCT", "0")
    den = load_denoiser(path, device="cpu")
    assert not den.instruct and len(den.prefix_ids) == 1


def test_a_chat_template_the_sandbox_refuses_is_one_error_line(tmp_path, capfdbinary):
    import json

    from lacuna.cli import main

    path = build_tiny_dream(tmp_path / "Dream-v0-Instruct-7B", instruct=True)
    config = path / "tokenizer_config.json"
    tok_config = json.loads(config.read_text())
    tok_config["chat_template"] = "{{ ''.__class__.__mro__ }}"  # escapes the sandbox
    config.write_text(json.dumps(tok_config))
    doc = tmp_path / "a.txt"
    doc.write_text("a [MASK] b", encoding="utf-8")
    assert main(["fill", str(doc), "--model", str(path)]) == 2
    err = capfdbinary.readouterr().err.decode()
    (line,) = [ln for ln in err.splitlines() if ln.strip()]
    assert line.startswith("lacuna: error:") and "LACUNA_INSTRUCT=0" in line
