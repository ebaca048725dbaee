"""llama.cpp diffusion GGUFs (``dream``, ``llada``, ``llada-moe``): tiny files written here
with ``gguf.GGUFWriter`` the way llama.cpp's ``convert_hf_to_gguf.py`` writes them (tensor
names, metadata keys, q/k permutation for llada, experts stacked into one 3-D tensor for
llada-moe, quant types), loaded through auto-detection and checked against the same weights
loaded through the safetensors path."""

import json

import numpy as np
import pytest
import torch
from family_checks import check_fill, check_interface, check_shapes
from gguf import GGML_QUANT_SIZES, GGUFWriter, LlamaFileType
from gguf import GGMLQuantizationType as Q
from gguf.quants import dequantize, quantize
from tiny_families import build_tiny_dream, build_tiny_llada, build_tiny_llada_moe, build_tiny_rnd1

from infill.models import detect_family, load_denoiser
from infill.models.runtime.report import describe
from infill.models.runtime.transformer import Transformer, TransformerConfig
from infill.models.runtime.weights import ModelLoadError

TOP = {"embed_tokens.weight": "token_embd.weight", "norm.weight": "output_norm.weight",
       "lm_head.weight": "output.weight"}
BLOCK = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q",
         "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
         "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
         "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
         "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm",
         "mlp.gate": "ffn_gate_inp"}
#: LLaDAMoEModel.modify_tensors: the experts' weights stacked (dim 0) into one tensor each.
EXPERTS = {"gate_proj": "ffn_gate_exps", "up_proj": "ffn_up_exps", "down_proj": "ffn_down_exps"}


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Each test converts into a cache of its own (``$LACUNA_CACHE``)."""
    monkeypatch.setenv("LACUNA_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def gguf_name(native: str) -> str:
    if native in TOP:
        return TOP[native]
    _, i, rest = native.split(".", 2)
    module, leaf = rest.rsplit(".", 1)
    return f"blk.{i}.{BLOCK[module]}.{leaf}"


def layout(state: dict, cfg, expert_order=None):
    """``(gguf name, array, native names)`` for every tensor the converter writes: the per
    expert weights of a MoE layer stacked in expert order (``expert_order``: a wrong order, to
    show that it matters), one native name per row of the stack."""
    out, stacked = [], {}
    for name, p in state.items():
        if name == "lm_head.weight" and cfg.tie_embeddings:
            continue
        if ".mlp.experts." in name:
            _, i, _, _, e, proj, leaf = name.split(".")
            stacked.setdefault((int(i), proj, leaf), {})[int(e)] = name
            continue
        out.append((gguf_name(name), p.float().numpy(), [name]))
    for (i, proj, leaf), by_expert in sorted(stacked.items()):
        order = expert_order or sorted(by_expert)
        natives = [by_expert[e] for e in order]
        x = np.stack([state[n].float().numpy() for n in natives])
        out.append((f"blk.{i}.{EXPERTS[proj]}.{leaf}", x,
                    [by_expert[e] for e in sorted(by_expert)]))
    return out


def llama_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """What convert_hf_to_gguf.py does to q/k rows of llama-rope models (LLaMA, LLaDA)."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def vocab_of(tokenizer, rows: int):
    """tokens, token types and merges as the converter writes them: ids past the tokenizer
    become ``[PAD{i}]`` (UNUSED), special added tokens CONTROL."""
    backend = json.loads(tokenizer.backend_tokenizer.to_str())
    specials = {t["id"] for t in backend["added_tokens"] if t["special"]}
    reverse = {i: t for t, i in tokenizer.get_vocab().items()}
    tokens, types = [], []
    for i in range(rows):
        if i not in reverse:
            tokens.append(f"[PAD{i}]")
            types.append(5)
        else:
            tokens.append(reverse[i])
            types.append(3 if i in specials else 1)
    merges = [m if isinstance(m, str) else " ".join(m) for m in backend["model"]["merges"]]
    return tokens, types, merges


def random_kquant(shape, kind: Q, seed: int) -> np.ndarray:
    """Random K-quant blocks (gguf.quants cannot quantize to K-quants) with small, finite
    super-block scales: the weights are whatever these blocks dequantize to."""
    block, size = GGML_QUANT_SIZES[kind]
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, (shape[0], shape[1] // block, size), dtype=np.uint8)
    scales = rng.uniform(0.001, 0.004, raw.shape[:2] + (2,)).astype(np.float16).view(np.uint8)
    where = slice(0, 4) if kind == Q.Q4_K else slice(size - 2, size)  # d, dmin | d
    raw[:, :, where] = scales.reshape(raw.shape[:2] + (-1,))[:, :, :where.stop - where.start]
    return raw.reshape(shape[0], -1)


def write_gguf(path, arch, den, qtype, *, pre, shift=None, mask=None, permute=None,
               ftype=LlamaFileType.MOSTLY_Q8_0, expert_order=None, expert_ff_key=True):
    """Write ``den``'s network as llama.cpp's ``arch`` GGUF with 2-D (and stacked 3-D expert)
    weights in ``qtype`` (norms and the MoE router F32, as the converter keeps them); set
    ``den``'s own weights to the dequantized values so that both sides compute with the same
    numbers (K-quants: random blocks)."""
    permute = arch == "llada" if permute is None else permute
    assert expert_order is None or qtype == Q.F32, "a shuffled stack: exact weights only"
    cfg = den.model.cfg
    w = GGUFWriter(str(path), arch)
    w.add_name("tiny-" + arch)
    w.add_file_type(ftype)
    w.add_block_count(cfg.num_layers)
    w.add_context_length(cfg.max_position)
    w.add_embedding_length(cfg.hidden_size)
    if arch != "llada-moe":  # LLaDA-MoE's config has no intermediate_size for TextModel
        w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_heads)
    w.add_head_count_kv(cfg.num_kv_heads)
    w.add_rope_freq_base(cfg.rope_theta)
    w.add_layer_norm_rms_eps(cfg.rms_eps)
    w.add_rope_dimension_count(cfg.head_dim)
    if cfg.head_dim != cfg.hidden_size // cfg.num_heads:  # TextModel writes config's head_dim
        w.add_key_length(cfg.head_dim)
        w.add_value_length(cfg.head_dim)
    w.add_causal_attention(False)
    if arch == "llada":
        w.add_vocab_size(cfg.vocab_size)
    if arch in ("llada-moe", "rnd1"):  # TextModel's expert keys (Qwen2MoeModel's for rnd1)
        w.add_expert_count(cfg.num_experts)
        w.add_expert_used_count(cfg.experts_per_token)
        if expert_ff_key:
            w.add_expert_feed_forward_length(cfg.expert_intermediate_size)
        else:  # llama.cpp's fallback: n_ff / n_expert_used
            w.add_feed_forward_length(cfg.expert_intermediate_size * cfg.experts_per_token)
        if arch == "llada-moe":  # RND1Model writes no shift: diffusion-cli's default, shifted
            shift = False if shift is None else shift
    if shift is not None:
        w.add_diffusion_shift_logits(shift)
    tok = den.tokenizer
    tokens, types, merges = vocab_of(tok, cfg.vocab_size)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(den.prefix_ids[0])
    w.add_eos_token_id(min(den.end_ids))
    w.add_mask_token_id(den.mask_id if mask is None else mask)
    if tok.chat_template:
        w.add_chat_template(tok.chat_template)
    state = den.model.state_dict()
    with torch.no_grad():
        for gname, x, natives in layout(state, cfg, expert_order):
            leaf = gname.split(".")[-2]
            kind = qtype if x.ndim >= 2 and leaf != "ffn_gate_inp" else Q.F32
            if kind in (Q.Q4_K, Q.Q6_K):
                raw = random_kquant(x.shape, kind, seed=len(gname))
                x = dequantize(raw, kind).reshape(x.shape)
            else:
                raw = x if kind == Q.F32 else quantize(x, kind)
            back = torch.from_numpy(np.ascontiguousarray(
                dequantize(raw, kind), dtype=np.float32).reshape(x.shape))
            if len(natives) == 1:
                state[natives[0]].copy_(back)
            elif expert_order is None:  # row e of the stack is expert e
                for e, n in enumerate(natives):
                    state[n].copy_(back[e])
            if permute and leaf in ("attn_q", "attn_k"):
                heads = cfg.num_heads if leaf == "attn_q" else cfg.num_kv_heads
                assert kind not in (Q.Q4_K, Q.Q6_K), "random K-quant rows: write dream"
                x = llama_permute(x, heads)
                raw = x if kind == Q.F32 else quantize(x, kind)
            if kind == Q.F32:
                w.add_tensor(gname, raw)
            else:
                w.add_tensor(gname, raw, raw_shape=raw.shape, raw_dtype=kind)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="module")
def llada_ref(tmp_path_factory):
    return load_denoiser(build_tiny_llada(tmp_path_factory.mktemp("llada"), seed=5),
                         device="cpu")


@pytest.fixture(scope="module")
def dream_ref(tmp_path_factory):
    return load_denoiser(build_tiny_dream(tmp_path_factory.mktemp("dream"), seed=6),
                         device="cpu")


@pytest.fixture(scope="module")
def moe_ref(tmp_path_factory):
    return load_denoiser(build_tiny_llada_moe(tmp_path_factory.mktemp("llada-moe"), seed=7),
                         device="cpu")


def llama_cpp_shapes(cfg) -> dict[str, tuple[int, ...]]:
    """What ``llama_model_llada_moe::load_arch_tensors`` creates (ggml order, innermost
    dimension first): a file whose tensors differ in name or shape does not load there."""
    n, hd, e, ff = cfg.hidden_size, cfg.head_dim, cfg.num_experts, cfg.expert_intermediate_size
    gqa = cfg.num_kv_heads * hd
    shapes = {"token_embd.weight": (n, cfg.vocab_size), "output_norm.weight": (n,),
              "output.weight": (n, cfg.vocab_size)}
    for i in range(cfg.num_layers):
        shapes.update({f"blk.{i}.{k}.weight": v for k, v in {
            "attn_norm": (n,), "attn_q": (n, n), "attn_k": (n, gqa), "attn_v": (n, gqa),
            "attn_output": (n, n), "attn_q_norm": (hd,), "attn_k_norm": (hd,),
            "ffn_norm": (n,), "ffn_gate_inp": (n, e), "ffn_gate_exps": (n, ff, e),
            "ffn_down_exps": (ff, n, e), "ffn_up_exps": (n, ff, e)}.items()})
    return shapes


def ids_for(den, n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, len(den.tokenizer), (2, n), generator=g)
    ids[:, 0] = den.prefix_ids[0]
    ids[:, 4:7] = den.mask_id
    return ids


@pytest.mark.parametrize("qtype", [Q.F32, Q.F16, Q.Q8_0])
def test_llada_gguf_matches_the_safetensors_checkpoint(tmp_path, llada_ref, qtype):
    file = write_gguf(tmp_path / "LLaDA-tiny.gguf", "llada", llada_ref, qtype, pre="gpt-2")
    found = detect_family(file)
    assert found.family == "llada" and found.config["shift_logits"] is False
    den = load_denoiser(file, device="cpu")
    assert type(den).__name__ == "LLaDADenoiser" and den.shift is False
    assert den.mask_id == llada_ref.mask_id
    assert den.tokenizer.convert_ids_to_tokens(den.mask_id) == "<|mdm_mask|>"
    assert len(den.tokenizer) == len(llada_ref.tokenizer)  # [PAD] rows are not tokens
    ids = ids_for(den)
    torch.testing.assert_close(den.logits(ids), llada_ref.logits(ids), rtol=1e-4, atol=1e-4)
    text = "def add(a, b):\n    return a + b  # 12345\n"
    assert den.tokenizer(text)["input_ids"] == llada_ref.tokenizer(text)["input_ids"]


def test_llada_qk_are_unpermuted(tmp_path, llada_ref):
    """A file written without llama.cpp's permutation must not match: the loader undoes
    one, so forgetting it on either side shows."""
    good = load_denoiser(write_gguf(tmp_path / "a.gguf", "llada", llada_ref, Q.F32,
                                    pre="gpt-2"), device="cpu")
    bad = load_denoiser(write_gguf(tmp_path / "b.gguf", "llada", llada_ref, Q.F32,
                                   pre="gpt-2", permute=False), device="cpu")
    ids = ids_for(llada_ref)
    torch.testing.assert_close(good.logits(ids), llada_ref.logits(ids), rtol=1e-4, atol=1e-4)
    assert not torch.allclose(bad.logits(ids), llada_ref.logits(ids), atol=1e-3)


@pytest.mark.parametrize("qtype", [Q.F16, Q.Q8_0])
def test_dream_gguf_matches_and_is_shifted(tmp_path, dream_ref, qtype):
    file = write_gguf(tmp_path / "Dream-tiny.gguf", "dream", dream_ref, qtype, pre="qwen2",
                      shift=True)
    den = load_denoiser(tmp_path, device="cpu")  # a directory holding one .gguf
    assert type(den).__name__ == "DreamDenoiser" and den.shift is True
    assert detect_family(file).family == "dream"
    ids = ids_for(den)
    torch.testing.assert_close(den.raw_logits(ids), dream_ref.raw_logits(ids),
                               rtol=1e-4, atol=1e-4)
    aligned = den.logits(ids)
    torch.testing.assert_close(aligned[:, 1:], den.raw_logits(ids)[:, :-1])  # row i-1 -> i
    torch.testing.assert_close(aligned, dream_ref.logits(ids), rtol=1e-4, atol=1e-4)
    text = "def add(a, b):\n    return a + b  # 12345 ünï\n"
    assert den.tokenizer(text)["input_ids"] == dream_ref.tokenizer(text)["input_ids"]
    assert den.tokenizer.decode(den.tokenizer(text)["input_ids"]) == text


def test_shift_and_mask_come_from_the_metadata(tmp_path, dream_ref):
    """``diffusion.shift_logits`` false on a dream file: row i scores token i. The mask id
    is the metadata's, not the family constant."""
    other = dream_ref.tokenizer.convert_tokens_to_ids("<|im_start|>")
    file = write_gguf(tmp_path / "d.gguf", "dream", dream_ref, Q.F32, pre="qwen2",
                      shift=False, mask=other)
    den = load_denoiser(file, device="cpu")
    assert den.shift is False and den.mask_id == other
    ids = ids_for(dream_ref)
    torch.testing.assert_close(den.logits(ids), dream_ref.raw_logits(ids), rtol=1e-4,
                               atol=1e-4)
    # without the key, dream is shifted (llama.cpp's diffusion-cli default)
    file = write_gguf(tmp_path / "e.gguf", "dream", dream_ref, Q.F32, pre="qwen2")
    assert load_denoiser(file, device="cpu").shift is True


@pytest.mark.parametrize("qtype", [Q.F32, Q.F16, Q.Q8_0])
def test_llada_moe_gguf_matches_the_safetensors_checkpoint(tmp_path, moe_ref, qtype):
    from gguf import GGUFReader
    from gguf.constants import MODEL_ARCH, MODEL_TENSORS, TENSOR_NAMES

    cfg = moe_ref.model.cfg
    file = write_gguf(tmp_path / "LLaDA-MoE-7B-A1B-Base-tiny.gguf", "llada-moe", moe_ref, qtype,
                      pre="gpt-2")
    tensors = {t.name: t for t in GGUFReader(str(file)).tensors}
    assert {n: tuple(int(d) for d in t.shape) for n, t in tensors.items()} \
        == llama_cpp_shapes(cfg)
    known = {TENSOR_NAMES[k] for k in MODEL_TENSORS[MODEL_ARCH.LLADA_MOE]}
    assert {n.rsplit(".", 1)[0].replace(".0.", ".{bid}.").replace(".1.", ".{bid}.")
            for n in tensors} == known
    assert tensors["blk.1.ffn_down_exps.weight"].tensor_type == qtype
    assert tensors["blk.1.ffn_gate_inp.weight"].tensor_type == Q.F32  # the router stays F32
    found = detect_family(file)
    assert found.family == "llada-moe" and found.config["shift_logits"] is False
    assert found.config["num_experts"] == cfg.num_experts
    den = load_denoiser(file, device="cpu")
    assert type(den).__name__ == "LLaDAMoEDenoiser" and den.shift is False
    assert den.model.cfg.qk_norm and not den.model.cfg.norm_topk_prob
    assert den.mask_id == moe_ref.mask_id
    assert den.tokenizer.convert_ids_to_tokens(den.mask_id) == "<|mask|>"
    assert den.prefix_ids == moe_ref.prefix_ids and den.end_ids == moe_ref.end_ids
    ids = ids_for(den)
    torch.testing.assert_close(den.logits(ids), moe_ref.logits(ids), rtol=1e-4, atol=1e-4)
    text = "def add(a, b):\n    return a + b  # 12345\n"
    assert den.tokenizer(text)["input_ids"] == moe_ref.tokenizer(text)["input_ids"]


def test_llada_moe_expert_rows_are_expert_ids(tmp_path, moe_ref):
    """Row e of a stacked ``_exps`` tensor is expert e, the one the router's row e scores:
    the same file with the experts stacked in another order is another network."""
    ids = ids_for(moe_ref)
    n = moe_ref.model.cfg.num_experts
    good = load_denoiser(write_gguf(tmp_path / "a.gguf", "llada-moe", moe_ref, Q.F32,
                                    pre="gpt-2"), device="cpu")
    torch.testing.assert_close(good.logits(ids), moe_ref.logits(ids), rtol=1e-4, atol=1e-4)
    bad = load_denoiser(write_gguf(tmp_path / "b.gguf", "llada-moe", moe_ref, Q.F32,
                                   pre="gpt-2", expert_order=list(range(n))[::-1]),
                        device="cpu")
    assert not torch.allclose(bad.logits(ids), moe_ref.logits(ids), atol=1e-3)


def test_llada_moe_expert_width_falls_back_like_llama_cpp(tmp_path, moe_ref):
    """Without ``expert_feed_forward_length``: ``feed_forward_length / expert_used_count``."""
    file = write_gguf(tmp_path / "c.gguf", "llada-moe", moe_ref, Q.F32, pre="gpt-2",
                      expert_ff_key=False)
    den = load_denoiser(file, device="cpu")
    assert den.model.cfg.expert_intermediate_size == moe_ref.model.cfg.expert_intermediate_size
    ids = ids_for(moe_ref)
    torch.testing.assert_close(den.logits(ids), moe_ref.logits(ids), rtol=1e-4, atol=1e-4)


def test_llada_moe_doctor_names_family_and_active_parameters(tmp_path, moe_ref, capsys):
    from lacuna.cli import main

    cfg = moe_ref.model.cfg
    file = write_gguf(tmp_path / "m.gguf", "llada-moe", moe_ref, Q.Q8_0, pre="gpt-2")
    total = describe(moe_ref)["parameters"]
    idle = cfg.num_layers * (cfg.num_experts - cfg.experts_per_token) * 3 \
        * cfg.hidden_size * cfg.expert_intermediate_size
    info = describe(load_denoiser(file, device="cpu"))
    assert info["parameters"] == total and info["active_parameters"] == total - idle
    assert main(["doctor", "--model", str(file), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "family         llada-moe" in out
    assert f"parameters     {total:,}" in out
    assert f"active         {total - idle:,} parameters per token" in out
    assert "GGUF Q8_0" in out and "memory after" in out


def test_llada_moe_pre_tokenizer(tmp_path, moe_ref):
    """``tokenizer.ggml.pre: llada-moe`` (llama.cpp: the Bailing-MoE regex): one digit a
    piece, and the text comes back whole."""
    file = write_gguf(tmp_path / "t.gguf", "llada-moe", moe_ref, Q.F32, pre="llada-moe")
    tok = load_denoiser(file, device="cpu").tokenizer
    pieces = tok.backend_tokenizer.pre_tokenizer.pre_tokenize_str("x = 12345\n \n\tI'LL")
    assert [p for p, _ in pieces] == ["x", "Ġ=", "Ġ", *"12345", "ĊĠĊ", "ĉI", "'LL"]
    text = "def add(a, b):\n    return a + b  # 12345 ünï\n"
    assert tok.decode(tok(text)["input_ids"]) == text


@pytest.mark.parametrize("qtype", [Q.Q4_K, Q.Q6_K])
def test_k_quants(tmp_path, dream_ref, qtype):
    """K-quant blocks are 256 wide: a network 256 wide, with Dream's tokenizer."""
    cfg = TransformerConfig(vocab_size=dream_ref.model.cfg.vocab_size, hidden_size=256,
                            intermediate_size=512, num_layers=1, num_heads=4, num_kv_heads=2,
                            max_position=512, rope_theta=1e6, rms_eps=1e-6, qkv_bias=True)
    torch.manual_seed(3)
    model = Transformer(cfg)
    for p in model.parameters():  # norms and biases (F32); the K-quant blocks are random
        torch.nn.init.normal_(p, mean=1.0 if p.ndim == 1 else 0.0, std=0.05)

    class Ref:  # what write_gguf reads from a denoiser
        tokenizer, prefix_ids, end_ids, mask_id = (dream_ref.tokenizer, dream_ref.prefix_ids,
                                                   dream_ref.end_ids, dream_ref.mask_id)
    Ref.model = model
    file = write_gguf(tmp_path / "k.gguf", "dream", Ref, qtype, pre="qwen2", shift=True,
                      ftype=LlamaFileType.MOSTLY_Q4_K_M)
    den = load_denoiser(file, device="cpu")
    ids = ids_for(den)
    with torch.no_grad():
        want = model(ids)
    torch.testing.assert_close(den.raw_logits(ids)[..., :len(den.tokenizer)],
                               want[..., :len(den.tokenizer)], rtol=1e-4, atol=1e-4)
    assert "Q4_K_M" in den.source_format and qtype.name in den.source_format


def test_doctor_names_family_quant_and_memory(tmp_path, llada_ref, capsys):
    from lacuna.cli import main

    file = write_gguf(tmp_path / "x.gguf", "llada", llada_ref, Q.Q8_0, pre="gpt-2")
    assert main(["doctor", "--model", str(file), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "family" in out and "llada" in out
    assert "GGUF Q8_0" in out and "memory after" in out and "parameters" in out


def test_refusals(tmp_path, llada_ref):
    write_gguf(tmp_path / "a.gguf", "llada", llada_ref, Q.F32, pre="gpt-2")
    write_gguf(tmp_path / "b.gguf", "llada", llada_ref, Q.F32, pre="gpt-2")
    with pytest.raises(ModelLoadError, match="2 GGUF files"):
        detect_family(tmp_path)
    w = GGUFWriter(str(tmp_path / "llama.gguf"), "llama")
    w.add_block_count(1)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(ModelLoadError, match="not a diffusion model"):
        detect_family(tmp_path / "llama.gguf")
    (tmp_path / "junk.gguf").write_bytes(b"not a gguf")
    with pytest.raises(ModelLoadError, match="not a readable GGUF"):
        detect_family(tmp_path / "junk.gguf")


def test_quantized_while_streaming(tmp_path, llada_ref):
    """``--quant`` on a GGUF goes through the same placer seam: each Linear is quantized as
    its dequantized tensor arrives (the path bitsandbytes' nf4 takes on CUDA)."""
    from quant import load

    file = write_gguf(tmp_path / "q.gguf", "llada", llada_ref, Q.Q8_0, pre="gpt-2")
    den = load(file, device="cpu", mode="torch-int8")
    assert den.quant_report.mode == "torch-int8" and den.quant_report.layers == 2 * 7
    ids = ids_for(llada_ref)
    n = len(llada_ref.tokenizer)  # past it: -inf on both sides
    want, got = llada_ref.logits(ids)[..., :n], den.logits(ids)[..., :n]
    assert (got - want).abs().max() <= 0.05 * want.abs().max()


def test_llada_moe_quantized_while_streaming(tmp_path):
    """Every expert's three Linear layers quantized as its slice of the stack arrives: the
    same int8 network as the safetensors checkpoint quantized on load."""
    from quant import load

    ckpt = build_tiny_llada_moe(tmp_path / "ckpt", seed=8)
    ref = load_denoiser(ckpt, device="cpu")
    cfg = ref.model.cfg
    file = write_gguf(tmp_path / "q.gguf", "llada-moe", ref, Q.F32, pre="gpt-2")
    den = load(file, device="cpu", mode="torch-int8")
    want = load(ckpt, device="cpu", mode="torch-int8")
    assert den.quant_report.layers == want.quant_report.layers \
        == cfg.num_layers * (4 + 3 * cfg.num_experts)
    ids = ids_for(ref)
    torch.testing.assert_close(den.logits(ids), want.logits(ids), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("arch", ["llada", "dream", "llada-moe"])
def test_a_gguf_denoiser_fills(tmp_path, arch, llada_ref, dream_ref, moe_ref):
    ref, pre = {"llada": (llada_ref, "gpt-2"), "dream": (dream_ref, "qwen2"),
                "llada-moe": (moe_ref, "gpt-2")}[arch]
    den = load_denoiser(write_gguf(tmp_path / "m.gguf", arch, ref, Q.Q8_0, pre=pre),
                        device="cpu")
    check_interface(den, arch)
    check_shapes(den)
    check_fill(den)
    assert den.prefix_ids == ref.prefix_ids and den.end_ids == ref.end_ids


def test_converted_once_then_read_from_the_cache(tmp_path, llada_ref, own_cache, monkeypatch,
                                                 capsys):
    from infill.models.runtime import gguf_reader, tensor_cache

    file = write_gguf(tmp_path / "m.gguf", "llada", llada_ref, Q.Q8_0, pre="gpt-2")
    first = load_denoiser(file, device="cpu")
    entry = tensor_cache.entry(file, first.dtype)
    assert tensor_cache.complete(entry) and entry.parent == own_cache
    assert str(entry) in first.source_format
    told = capsys.readouterr().err
    assert f"converting the tensors once into {entry}" in told and "GiB" in told
    ids = ids_for(llada_ref)

    def no_dequantizing(t):
        raise AssertionError(f"dequantized {t.name} again")

    monkeypatch.setattr(gguf_reader, "tensor", no_dequantizing)
    again = load_denoiser(file, device="cpu")  # every tensor from the cache
    torch.testing.assert_close(again.logits(ids), first.logits(ids), rtol=0, atol=0)
    assert "converting" not in capsys.readouterr().err
    import os

    os.utime(file, ns=(1, 1))  # a replaced file is converted anew
    assert not tensor_cache.complete(tensor_cache.entry(file, first.dtype))
    with pytest.raises(AssertionError, match="dequantized"):
        load_denoiser(file, device="cpu")
    assert not tensor_cache.complete(tensor_cache.entry(file, first.dtype))  # nothing half
    assert sorted(p.name for p in own_cache.iterdir()) == [entry.name]  # no staging left


def test_an_unwritable_cache_costs_speed_not_the_load(tmp_path, llada_ref, monkeypatch):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache would go")
    monkeypatch.setenv("LACUNA_CACHE", str(blocked / "cache"))
    file = write_gguf(tmp_path / "m.gguf", "llada", llada_ref, Q.Q8_0, pre="gpt-2")
    den = load_denoiser(file, device="cpu")
    ids = ids_for(llada_ref)
    n = len(llada_ref.tokenizer)
    torch.testing.assert_close(den.logits(ids)[..., :n], llada_ref.logits(ids)[..., :n],
                               rtol=1e-4, atol=1e-4)
    assert "converted once" not in den.source_format


def test_the_cache_can_be_turned_off_and_f32_files_skip_it(tmp_path, llada_ref, own_cache,
                                                            monkeypatch):
    q8 = write_gguf(tmp_path / "q8.gguf", "llada", llada_ref, Q.Q8_0, pre="gpt-2")
    f32 = write_gguf(tmp_path / "f32.gguf", "llada", llada_ref, Q.F32, pre="gpt-2")
    load_denoiser(f32, device="cpu")  # nothing to convert: read as it is
    monkeypatch.setenv("LACUNA_GGUF_CACHE", "0")
    den = load_denoiser(q8, device="cpu")
    assert not own_cache.exists() and "converted once" not in den.source_format


def test_rnd1_gguf_matches_the_safetensors_checkpoint_shifted_and_renormalised(tmp_path):
    """``rnd1`` (``RND1Model(Qwen2MoeModel)`` in the converter, ``src/models/rnd1.cpp``): the
    Qwen3-MoE tensors, no ``diffusion.shift_logits`` (diffusion-cli's default: shifted), the
    top-k renormalised (``build_moe_ffn(..., norm_w=true, ...)``), the mask past the vocab."""
    from gguf import GGUFReader
    from gguf.constants import MODEL_ARCH, MODEL_TENSORS, TENSOR_NAMES

    ref = load_denoiser(build_tiny_rnd1(tmp_path / "ckpt", seed=3), device="cpu")
    file = write_gguf(tmp_path / "RND1-Base-tiny.gguf", "rnd1", ref, Q.Q8_0, pre="qwen2")
    names = {t.name for t in GGUFReader(str(file)).tensors}
    known = {TENSOR_NAMES[k] for k in MODEL_TENSORS[MODEL_ARCH.RND1]}
    assert {n.rsplit(".", 1)[0].replace(".0.", ".{bid}.").replace(".1.", ".{bid}.")
            for n in names} == known
    found = detect_family(file)
    assert found.family == "rnd1" and found.config["shift_logits"] is True
    den = load_denoiser(file, device="cpu")
    assert type(den).__name__ == "RND1Denoiser" and den.shift is True
    assert den.model.cfg.norm_topk_prob and den.model.cfg.qk_norm
    assert den.mask_id == ref.mask_id == len(den.tokenizer)
    assert den.prefix_ids == ref.prefix_ids
    ids = ids_for(den)
    torch.testing.assert_close(den.logits(ids), ref.logits(ids), rtol=1e-4, atol=1e-4)


def test_a_damaged_cache_is_converted_again(tmp_path, llada_ref, own_cache):
    from infill.models.runtime import tensor_cache

    file = write_gguf(tmp_path / "m.gguf", "llada", llada_ref, Q.Q8_0, pre="gpt-2")
    first = load_denoiser(file, device="cpu")
    entry = tensor_cache.entry(file, first.dtype)
    shard = next(entry.glob("*.safetensors"))
    shard.write_bytes(b"\x00" * 16)  # truncated: no header to read
    again = load_denoiser(file, device="cpu")
    ids = ids_for(llada_ref)
    torch.testing.assert_close(again.logits(ids), first.logits(ids), rtol=0, atol=0)
    assert tensor_cache.complete(entry)
    assert sum(f.stat().st_size for f in entry.glob("*.safetensors")) > 1000  # written anew


@pytest.mark.parametrize("cached", [False, True])
def test_nf4_from_a_gguf_holds_one_block_weight_at_a_time(tmp_path, llada_ref, monkeypatch,
                                                           cached):
    """``--quant nf4`` on a GGUF (bitsandbytes' CPU backend here, the same seam as CUDA):
    each block Linear is quantized as its dequantized tensor arrives and the float copy is
    let go, so no float32 copy of the network's block weights ever exists at once (with the
    conversion cache, at most a shard's worth waits to be written)."""
    import gc
    import weakref

    from infill.models.runtime import gguf_reader, tensor_cache
    from quant import load

    if cached:
        monkeypatch.setattr(tensor_cache, "SHARD_BYTES", 1)  # every tensor its own shard
    else:
        monkeypatch.setenv("LACUNA_GGUF_CACHE", "0")
    file = write_gguf(tmp_path / "q.gguf", "llada", llada_ref, Q.Q8_0, pre="gpt-2")
    block = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")
    made: list = []
    most = 0
    real = gguf_reader.tensor

    def tracked(t):
        nonlocal most
        gc.collect()
        most = max(most, sum(r() is not None for r in made))
        out = real(t)
        if t.name.split(".")[2:3] and t.name.split(".")[2] in block:
            made.append(weakref.ref(out))
        return out

    monkeypatch.setattr(gguf_reader, "tensor", tracked)
    den = load(file, device="cpu", mode="nf4")
    assert den.quant_report.mode == "nf4" and den.quant_report.layers == len(made) == 14
    assert most <= 1  # the one being quantized; the earlier ones are gone
    # (the nf4 logits themselves are checked in test_quant.py: bitsandbytes' CPU kernel wants
    # widths this tiny llada does not have)
