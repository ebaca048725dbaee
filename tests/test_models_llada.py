"""LLaDA: a tiny checkpoint in LLaDA-8B's own format, loaded through auto-detection."""

import json

import pytest
import torch
from family_checks import check_fill, check_interface, check_shapes
from tiny_families import build_tiny_llada

from infill.models import detect_family, load_denoiser
from infill.models.runtime.weights import ModelLoadError, iter_tensors


@pytest.fixture(scope="module")
def llada_dir(tmp_path_factory):
    return build_tiny_llada(tmp_path_factory.mktemp("llada-base"), seed=1)


@pytest.fixture(scope="module")
def llada(llada_dir):
    return load_denoiser(llada_dir, device="cpu")


def test_detected_by_model_type_and_loaded_from_shards(llada_dir, llada):
    assert detect_family(llada_dir).family == "llada"
    assert (llada_dir / "model.safetensors.index.json").exists()
    names = {n for n, _ in iter_tensors(llada_dir)}
    assert "model.transformer.blocks.0.ff_proj.weight" in names
    assert "model.transformer.ff_out.weight" in names
    check_interface(llada, "llada")


def test_mask_and_plain_framing(llada, llada_dir):
    config = json.loads((llada_dir / "config.json").read_text())
    assert llada.mask_id == config["mask_token_id"]
    assert llada.tokenizer.convert_ids_to_tokens(llada.mask_id) == "<|mdm_mask|>"
    assert not llada.instruct
    assert llada.prefix_ids == (llada.tokenizer.bos_token_id,) and llada.suffix_ids == ()
    eos = llada.tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|eot_id|>"])
    assert llada.end_ids == frozenset(eos)


def test_logits_are_not_shifted_and_padded_rows_are_forbidden(llada):
    full = check_shapes(llada)
    ids = torch.tensor([[llada.prefix_ids[0], 5, 6, llada.mask_id, 7]])
    raw = llada.model(ids)
    n = len(llada.tokenizer)
    torch.testing.assert_close(llada.logits(ids)[..., :n], raw[..., :n])
    assert full.shape[-1] > n and torch.isinf(full[..., n:]).all()


def llama_reference(llada_dir):
    """transformers' Llama, filled from the LLaDA checkpoint by a name map written here."""
    from transformers import LlamaConfig, LlamaForCausalLM

    c = json.loads((llada_dir / "config.json").read_text())
    cfg = LlamaConfig(
        vocab_size=c["embedding_size"], hidden_size=c["d_model"],
        intermediate_size=c["mlp_hidden_size"], num_hidden_layers=c["n_layers"],
        num_attention_heads=c["n_heads"], num_key_value_heads=c["n_kv_heads"],
        rms_norm_eps=c["rms_norm_eps"], max_position_embeddings=c["max_sequence_length"],
        rope_parameters={"rope_type": "default", "rope_theta": c["rope_theta"]},
        tie_word_embeddings=False, attn_implementation="sdpa",
    )
    ref = LlamaForCausalLM(cfg).eval()
    to_llama = {"attn_norm": "input_layernorm", "q_proj": "self_attn.q_proj",
                "k_proj": "self_attn.k_proj", "v_proj": "self_attn.v_proj",
                "attn_out": "self_attn.o_proj", "ff_norm": "post_attention_layernorm",
                "ff_proj": "mlp.gate_proj", "up_proj": "mlp.up_proj", "ff_out": "mlp.down_proj"}
    state = {}
    for name, t in iter_tensors(llada_dir):
        parts = name.split(".")
        if parts[2] == "blocks":
            state[f"model.layers.{parts[3]}.{to_llama[parts[4]]}.weight"] = t
        else:
            state[{"wte": "model.embed_tokens.weight", "ln_f": "model.norm.weight",
                   "ff_out": "lm_head.weight"}[parts[2]]] = t
    missing, unexpected = ref.load_state_dict(state, strict=False)
    assert not missing and not unexpected
    return ref


def test_matches_transformers_llama_with_a_bidirectional_mask(llada, llada_dir):
    ref = llama_reference(llada_dir)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, len(llada.tokenizer), (1, 11), generator=gen)
    n = len(llada.tokenizer)
    with torch.inference_mode():
        causal = ref(ids).logits
        bidir = ref(ids, attention_mask=torch.ones(1, 1, 11, 11, dtype=torch.bool)).logits
    torch.testing.assert_close(llada.model(ids, causal=True), causal, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(llada.logits(ids)[..., :n], bidir[..., :n], rtol=1e-4, atol=1e-4)
    assert not torch.allclose(causal, bidir, atol=1e-3)  # the mask matters: LLaDA sees both ways


def test_fill_stays_inside_the_holes(llada):
    check_fill(llada)


def test_instruct_checkpoint_poses_the_fill_as_a_chat_turn(tmp_path):
    path = build_tiny_llada(tmp_path / "LLaDA-8B-Instruct", instruct=True)
    den = load_denoiser(path, device="cpu")
    tok = den.tokenizer
    assert den.instruct
    head = tok.decode(list(den.prefix_ids))
    assert head.startswith("<|startoftext|><|start_header_id|>user<|end_header_id|>\n\n")
    assert head.endswith("<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
    assert tok.decode(list(den.suffix_ids)) == "<|eot_id|>"
    check_fill(den)


def test_unsupported_olmo_variants_are_refused_by_name(llada_dir, tmp_path):
    config = json.loads((llada_dir / "config.json").read_text())
    config["block_type"] = "sequential"
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="block_type='sequential'"):
        load_denoiser(tmp_path, device="cpu")
