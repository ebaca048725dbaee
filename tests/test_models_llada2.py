"""LLaDA 2.x: a tiny checkpoint in LLaDA2.0-mini's own format, loaded through auto-detection,
checked against transformers' Glm4Moe (the same sigmoid grouped router, shared expert,
first dense layers, per-head q/k norm and partial rotary) run with the block-causal mask of
the checkpoint's ``generate``."""

import json

import pytest
import torch
from family_checks import check_fill, check_interface, check_shapes, doctor_rows
from tiny_families import build_tiny_llada2

from infill.models import ModelLoadError, detect_family, load_denoiser
from infill.models.runtime.weights import iter_tensors


@pytest.fixture(scope="module")
def llada2_dir(tmp_path_factory):
    return build_tiny_llada2(tmp_path_factory.mktemp("llada2") / "LLaDA2.0-tiny", seed=6)


@pytest.fixture(scope="module")
def llada2(llada2_dir):
    return load_denoiser(llada2_dir, device="cpu")


def glm4_moe_reference(path):
    """transformers' Glm4Moe filled from the LLaDA 2.x checkpoint: the fused query_key_value
    split into q/k/v, the per-expert tensors stacked into Glm4Moe's fused ones here."""
    from transformers import Glm4MoeConfig, Glm4MoeForCausalLM

    c = json.loads((path / "config.json").read_text())
    cfg = Glm4MoeConfig(
        vocab_size=c["vocab_size"], hidden_size=c["hidden_size"],
        intermediate_size=c["intermediate_size"], num_hidden_layers=c["num_hidden_layers"],
        num_attention_heads=c["num_attention_heads"], head_dim=c["head_dim"],
        num_key_value_heads=c["num_key_value_heads"], rms_norm_eps=c["rms_norm_eps"],
        rope_parameters={"rope_type": "default", "rope_theta": c["rope_theta"],
                         "partial_rotary_factor": c["partial_rotary_factor"]},
        max_position_embeddings=c["max_position_embeddings"], attention_bias=False,
        use_qk_norm=True, n_routed_experts=c["num_experts"],
        num_experts_per_tok=c["num_experts_per_tok"],
        moe_intermediate_size=c["moe_intermediate_size"],
        n_shared_experts=c["num_shared_experts"], n_group=c["n_group"],
        topk_group=c["topk_group"], routed_scaling_factor=c["routed_scaling_factor"],
        norm_topk_prob=True, first_k_dense_replace=c["first_k_dense_replace"],
        tie_word_embeddings=False, attn_implementation="sdpa",
    )
    ref = Glm4MoeForCausalLM(cfg).eval()
    src = dict(iter_tensors(path))
    heads, kv, d = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
    state = {"model.embed_tokens.weight": src.pop("model.word_embeddings.weight")}
    for i in range(c["num_hidden_layers"]):
        a, m = f"model.layers.{i}.attention.", f"model.layers.{i}.mlp."
        q, k, v = src.pop(a + "query_key_value.weight").split([heads * d, kv * d, kv * d])
        out = f"model.layers.{i}.self_attn."
        state |= {out + "q_proj.weight": q, out + "k_proj.weight": k, out + "v_proj.weight": v,
                  out + "o_proj.weight": src.pop(a + "dense.weight"),
                  out + "q_norm.weight": src.pop(a + "query_layernorm.weight"),
                  out + "k_norm.weight": src.pop(a + "key_layernorm.weight")}
        if i < c["first_k_dense_replace"]:
            continue
        experts = range(c["num_experts"])
        state[m + "experts.gate_up_proj"] = torch.stack([torch.cat([
            src.pop(f"{m}experts.{e}.gate_proj.weight"),
            src.pop(f"{m}experts.{e}.up_proj.weight")]) for e in experts])
        state[m + "experts.down_proj"] = torch.stack(
            [src.pop(f"{m}experts.{e}.down_proj.weight") for e in experts])
        state[m + "gate.e_score_correction_bias"] = src.pop(m + "gate.expert_bias")
    state |= src  # norms, dense and shared MLPs, mlp.gate.weight, lm_head: the same names
    missing, unexpected = ref.load_state_dict(state, strict=False)
    assert not missing and not unexpected
    return ref


@pytest.fixture(scope="module")
def glm4(llada2_dir):
    return glm4_moe_reference(llada2_dir)


def generate_mask(length: int, block: int) -> torch.Tensor:
    """The checkpoint ``generate``'s mask: ``tril(ones(blocks, blocks))`` repeated ``block``
    times along both axes, blocks counted from position 0."""
    blocks = (length + block - 1) // block
    m = torch.tril(torch.ones(blocks, blocks)).repeat_interleave(block, 0)
    return m.repeat_interleave(block, 1).bool()[:length, :length]


def ref_logits(ref, ids: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return ref(ids, attention_mask=allowed[None, None]).logits


def test_detected_and_loaded_with_llada2_names(llada2_dir, llada2):
    assert detect_family(llada2_dir).family == "llada2"
    names = {n for n, _ in iter_tensors(llada2_dir)}
    assert {"model.word_embeddings.weight", "model.layers.0.attention.query_key_value.weight",
            "model.layers.0.attention.dense.weight", "model.layers.0.mlp.gate_proj.weight",
            "model.layers.1.mlp.gate.expert_bias", "model.layers.2.mlp.experts.7.up_proj.weight",
            "model.layers.1.mlp.shared_experts.down_proj.weight",
            "model.layers.1.attention.key_layernorm.weight", "lm_head.weight"} <= names
    assert (llada2_dir / "model.safetensors.index.json").exists()
    check_interface(llada2, "llada2")


def test_mask_blocks_ends_and_plain_framing(llada2):
    tok = llada2.tokenizer
    assert tok.convert_ids_to_tokens(llada2.mask_id) == "<|mask|>"
    assert llada2.block_size == 32 and not llada2.fim and llada2.fim_ids is None
    assert llada2.prefix_ids == () and llada2.suffix_ids == ()
    assert tok.convert_tokens_to_ids("<|endoftext|>") in llada2.end_ids


@pytest.mark.parametrize("block", [32, 4])
def test_logits_match_transformers_glm4_moe_with_the_block_causal_mask(
        llada2, glm4, monkeypatch, block):
    monkeypatch.setattr(llada2, "block_size", block)
    n = len(llada2.tokenizer)
    m = llada2.mask_id
    ids = torch.tensor([[11, 12, 13, m, m, 14, 15, 16, m, 17, 18]])
    want = ref_logits(glm4, ids, generate_mask(11, block))[..., :n]
    ours = llada2.logits(ids)[..., :n]
    torch.testing.assert_close(ours, want, rtol=1e-4, atol=1e-4)
    rows = llada2.logits(ids, positions=torch.tensor([3, 8]))[..., :n]
    torch.testing.assert_close(rows, ours[:, [3, 8]], rtol=1e-5, atol=1e-5)
    for i in (3, 4, 8):  # unshifted: a one-row shift fails here
        assert not torch.allclose(ours[:, i], want[:, i - 1], atol=1e-3)


def test_a_token_sees_its_own_block_and_earlier_ones_only(llada2, monkeypatch):
    monkeypatch.setattr(llada2, "block_size", 4)
    m = llada2.mask_id
    ids = torch.tensor([[11, 12, 13, 14, m, m, m, 15, 16, 17, 18, 19]])
    base = llada2.logits(ids)
    later = ids.clone()
    later[0, 8] = 20
    torch.testing.assert_close(llada2.logits(later)[:, :8], base[:, :8])
    inside = ids.clone()
    inside[0, 7] = 20
    assert not torch.allclose(llada2.logits(inside)[:, 4], base[:, 4])


def test_the_sampler_decodes_the_models_own_blocks_in_order(llada2, monkeypatch):
    """A hole straddling model blocks (4 positions each here) is decoded block by block:
    no mask of a later block is committed while an earlier one still holds masks."""
    from infill.sample import sample
    from infill.types import SamplingOptions

    monkeypatch.setattr(llada2, "block_size", 4)
    m = llada2.mask_id
    ids = [11, 12, 13, 14, 15, 16] + [m] * 8  # masks at 6..13: model blocks 1, 2, 3
    seen = []
    sample(llada2, ids, list(range(6, 14)), SamplingOptions(steps=8),
           on_step=lambda s: seen.append(s.canvas[6:14].tolist()))
    blocks = [(0, 2), (2, 6), (6, 8)]  # of the hole: positions 6-7, 8-11, 12-13
    for canvas in seen:
        open_blocks = [any(t == m for t in canvas[a:b]) for a, b in blocks]
        started = [any(t != m for t in canvas[a:b]) for a, b in blocks]
        for i in range(1, 3):
            assert not (started[i] and any(open_blocks[:i])), canvas
    assert len(seen) == 8 and m not in seen[-1]


def test_the_block_cache_is_exact(llada2, monkeypatch):
    """Keys and values of every block but the current one come from one full pass: the
    current block's logits are those of a full pass, as its masks are committed."""
    monkeypatch.setattr(llada2, "block_size", 4)
    m = llada2.mask_id
    ids = torch.tensor([[11, 12, 13, 14, 15, 16, m, m, m, m, m, m, 17]])
    block = torch.tensor([6, 7])  # the masks of model block 1 (positions 4-7)
    _, cache = llada2.prefill(ids, block)
    for committed in ([6], [6, 7]):
        ids[0, committed] = 20
        want = llada2.logits(ids, positions=torch.tensor([8, 9]))
        later = llada2.cached_logits(ids, torch.tensor([8, 9]), cache, torch.tensor([8, 9]))
        assert not torch.allclose(later, want, atol=1e-4)  # block 2 reads the stale block 1
        got = llada2.cached_logits(ids, block, cache, block)
        torch.testing.assert_close(got, llada2.logits(ids, positions=block),
                                   rtol=1e-5, atol=1e-5)


def test_sampling_with_the_cache_gives_the_same_fill(llada2, monkeypatch):
    from infill.sample import sample
    from infill.types import SamplingOptions

    monkeypatch.setattr(llada2, "block_size", 4)
    m = llada2.mask_id
    ids, holes = [11, 12, 13, 14, 15, 16] + [m] * 8 + [17], list(range(6, 14))
    cached = sample(llada2, ids, holes, SamplingOptions(steps=8, cache=True))
    plain = sample(llada2, ids, holes, SamplingOptions(steps=8, cache=False))
    assert cached.ids.tolist() == plain.ids.tolist()
    assert cached.forward_passes == plain.forward_passes == 8


def test_the_router_chooses_inside_the_best_groups_only(llada2):
    """Group-limited choice: with the best single expert in a weak group, plain top-k would
    take it; the grouped router may not."""
    moe = llada2.model.layers[1].mlp
    assert moe.groups == 4 and moe.groups_per_token == 2
    scores = torch.tensor([[0.9, 0.0, 0.0, 0.0, 0.5, 0.5, 0.6, 0.6]])
    bias = moe.gate.expert_bias.detach().clone()
    try:
        moe.gate.expert_bias.data.zero_()
        chosen = sorted(moe._sigmoid_choice(scores)[0].tolist())
    finally:
        moe.gate.expert_bias.data.copy_(bias)
    # groups (0,1)=0.9, (2,3)=0.0, (4,5)=1.0, (6,7)=1.2: groups 3 and 2 win, not expert 0
    assert chosen == [6, 7]


def test_shapes_and_fill_stay_inside_the_holes(llada2):
    check_shapes(llada2)
    check_fill(llada2)


def test_instruct_checkpoint_frames_a_bailing_turn(tmp_path):
    den = load_denoiser(build_tiny_llada2(tmp_path / "LLaDA2.0-mini-preview-instruct",
                                          instruct=True), device="cpu")
    tok = den.tokenizer
    assert den.instruct
    assert tok.decode(list(den.prefix_ids)).startswith("<role>HUMAN</role>")
    assert tok.decode(list(den.prefix_ids)).endswith("<role>ASSISTANT</role>")
    assert tok.convert_tokens_to_ids("<|role_end|>") in den.end_ids
    check_fill(den)


def test_refusals(tmp_path, llada2_dir):
    import shutil

    bad = tmp_path / "LLaDA2-odd"
    shutil.copytree(llada2_dir, bad)
    config = json.loads((bad / "config.json").read_text())
    for change, why in [({"use_bias": True}, "use_bias"),
                        ({"use_linear_attention": True}, "linear attention"),
                        ({"score_function": "softmax"}, "score_function")]:
        (bad / "config.json").write_text(json.dumps(config | change))
        with pytest.raises(ModelLoadError, match=why):
            load_denoiser(bad, device="cpu")
    (bad / "config.json").write_text(json.dumps(config | {"num_attention_heads": 8}))
    with pytest.raises(ModelLoadError, match="the config implies"):  # a wrong head count
        load_denoiser(bad, device="cpu")


def test_doctor_names_family_size_active_experts_and_what_it_can_do(llada2_dir, capsys):
    rows, out = doctor_rows(llada2_dir, capsys)
    assert rows["family"] == "llada2"
    params = sum(t.numel() for _, t in iter_tensors(llada2_dir))
    assert rows["parameters"].startswith(f"{params:,}")
    c = json.loads((llada2_dir / "config.json").read_text())
    idle = 2 * (c["num_experts"] - 2) * 3 * c["hidden_size"] * c["moe_intermediate_size"]
    assert rows["active"].startswith(f"{params - idle:,} parameters per token")
    assert rows["window"] == "2048 tokens"  # no FIM tokens to make room for
    assert "block-causal, blocks of 32" in out and "prefix completion only" in out


def test_ghost_text_and_a_marker_fill_through_the_language_server(llada2_dir, tmp_path):
    """The editor's path with a block-diffusion MoE: inline completion at the cursor (the
    family's native prefix completion) and a ``[MASK]`` fill, nothing else changed."""
    from lsp_support import Session, server_env
    from lsprotocol import types

    uri, doc = "file:///work/ghost.py", "def add(a, b):\n    return \nvalue = [MASK]\n"
    s = Session(server_env(llada2_dir, tmp_path))
    s.start()
    try:
        s.initialize({"budget": 6, "inlineBudget": 6})
        s.open(uri, doc)
        ghost = s.wait(s.send(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=1, character=11),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Invoked))))
        assert len(ghost.items) == 1
        at = types.Position(line=1, character=11)
        assert ghost.items[0].range.start == ghost.items[0].range.end == at
        edits = s.request("lacuna/fill", {"textDocument": {"uri": uri}})
        assert edits and all(e["range"]["start"]["line"] == 2 for e in edits["edits"])
    finally:
        assert s.stop() == 0


def test_the_router_stays_float32_in_a_bfloat16_model(llada2_dir, llada2):
    den = load_denoiser(llada2_dir, device="cpu", dtype="bfloat16")
    gate = den.model.layers[1].mlp.gate
    assert gate.weight.dtype == gate.expert_bias.dtype == torch.float32
    assert den.model.layers[1].mlp.experts[0].up_proj.weight.dtype == torch.bfloat16
    # not rounded through bfloat16 on the way: the float32 checkpoint's values exactly
    assert torch.equal(gate.weight, llada2.model.layers[1].mlp.gate.weight)
    assert torch.equal(gate.expert_bias, llada2.model.layers[1].mlp.gate.expert_bias)
