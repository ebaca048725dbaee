"""quant/: quantize while loading, stay close to the unquantized logits, fill only the holes,
refuse clearly (no bitsandbytes, not enough GPU memory), save and load back."""

from __future__ import annotations

import logging
import sys

import pytest
import torch
from torch import nn

import quant
from infill.engine import fill
from infill.holes import find_markers
from infill.models import load_denoiser
from infill.models.runtime.transformer import Transformer, TransformerConfig
from infill.types import InfillRequest, SamplingOptions
from quant.modes import GiB, ParamCounts, QuantError, resolve_mode
from quant.quantizer import Quantizer, count, targets

#: Largest logit difference from the unquantized tiny model, as a fraction of the largest
#: unquantized logit (measured: int8 0.3%, torch-int8 0.7%, nf4 2.6%).
TOLERANCE = {"int8": 0.02, "torch-int8": 0.03, "nf4": 0.08}

PROMPT = "def add(a, b):\n    return [MASK:6]\n\nprint([MASK])\n"

#: LLaDA-8B-Base's shape (config.json of GSAI-ML/LLaDA-8B-Base).
LLADA_8B = TransformerConfig(vocab_size=126464, hidden_size=4096, intermediate_size=12288,
                             num_layers=32, num_heads=32, num_kv_heads=32, max_position=4096,
                             rope_theta=500000.0)


@pytest.fixture(scope="module")
def ids():
    return torch.tensor([[2, *range(3, 60)]])


@pytest.fixture(scope="module")
def reference(tiny_denoiser, ids):
    return tiny_denoiser.logits(ids)


@pytest.mark.parametrize("mode", ["int8", "nf4", "torch-int8"])
def test_logits_stay_within_tolerance_and_memory_shrinks(tiny_model_dir, ids, reference, mode):
    dn = quant.load(tiny_model_dir, device="cpu", mode=mode)
    got = dn.logits(ids)
    error = float((got - reference).abs().max() / reference.abs().max())
    assert error <= TOLERANCE[mode], f"{mode}: {error:.4f}"
    report = dn.quant_report
    assert report.mode == mode and report.layers == 14  # 2 layers x 7 Linear, head kept
    assert report.bytes_after < 0.6 * report.bytes_before
    # the embeddings (tied to the head) stay in fp32
    assert dn.model.embed_tokens.weight.dtype == torch.float32
    assert type(dn.model.lm_head) is nn.Linear


@pytest.mark.parametrize("mode", ["int8", "nf4", "torch-int8"])
def test_quantized_fills_stay_inside_the_holes(tiny_model_dir, mode):
    dn = quant.load(tiny_model_dir, device="cpu", mode=mode)
    holes = find_markers(PROMPT, budget=8)
    request = InfillRequest(PROMPT, holes, language="python", options=SamplingOptions(steps=4))
    result = fill(request, dn)
    assert len(result.fills) == 2
    assert len(result.fills[0].token_ids) == 6
    out = PROMPT
    for f in sorted(result.fills, key=lambda f: -f.hole.start):
        out = out[: f.hole.start] + f.text + out[f.hole.end :]
    assert out.startswith("def add(a, b):\n    return ")
    assert "\n\nprint(" in out and out.endswith(")\n")


def test_none_and_auto_on_cpu_leave_the_model_as_loaded(tiny_model_dir, ids, reference):
    for mode in ("none", "auto"):
        dn = quant.load(tiny_model_dir, device="cpu", mode=mode)
        assert dn.quant_report.mode == quant.CPU_AUTO == "none"
        assert dn.quant_report.layers == 0
        assert torch.equal(dn.logits(ids), reference)


def test_quantizing_a_loaded_denoiser_matches_quantizing_while_loading(tiny_model_dir, ids):
    streamed = quant.load(tiny_model_dir, device="cpu", mode="int8").logits(ids)
    after = quant.quantize(load_denoiser(tiny_model_dir, device="cpu"), "int8")
    assert after.quant_report.layers == 14
    assert torch.allclose(after.logits(ids), streamed)


@pytest.mark.parametrize("mode", ["int8", "nf4", "torch-int8"])
def test_saved_model_loads_back_without_quantizing(tiny_model_dir, tmp_path, ids, mode,
                                                   monkeypatch):
    dn = quant.load(tiny_model_dir, device="cpu", mode=mode)
    out = tmp_path / mode
    quant.save_quantized(dn, tiny_model_dir, out)
    expected = dn.logits(ids)  # after saving: bitsandbytes may repack weights on the CPU
    assert not (out / "model.safetensors").exists() and (out / "tokenizer.json").exists()

    def no_quantizing(*a, **k):
        raise AssertionError("a saved model must not be quantized again")

    monkeypatch.setattr("quant.quantizer.build", no_quantizing)
    back = quant.load(out, device="cpu")
    assert back.quant_report.mode == mode and back.quant_report.layers == 14
    assert torch.allclose(back.logits(ids), expected, atol=1e-5)
    assert back.model.lm_head.weight is back.model.embed_tokens.weight  # tie restored
    with pytest.raises(QuantError, match=f"holds a {mode} model"):
        quant.quantizer_for(out, "none" if mode != "none" else "int8")


def test_a_model_with_an_adapter_is_quantized_after_the_merge(tiny_model_dir, tmp_path, ids):
    import json
    import shutil

    model = tmp_path / "with-adapter"
    shutil.copytree(tiny_model_dir, model)
    config = json.loads((model / "config.json").read_text())
    config["lacuna"]["adapter"] = "adapter.safetensors"
    (model / "config.json").write_text(json.dumps(config))
    q = Quantizer("torch-int8")
    with torch.device("meta"):
        module = Transformer(TransformerConfig(32, 16, 32, 1, 2, 2, 16))
    q.begin(module, model, torch.device("cpu"), torch.float32)
    weight = torch.zeros(16, 16)
    assert not q.place(module, "layers.0.self_attn.q_proj.weight", weight, torch.device("cpu"),
                       torch.float32)  # left for after the merge


def test_missing_bitsandbytes_is_a_clear_error(tiny_model_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)
    with pytest.raises(QuantError, match="needs bitsandbytes.*pip install bitsandbytes"):
        quant.load(tiny_model_dir, device="cpu", mode="nf4")
    # modes that need no bitsandbytes still load
    assert quant.load(tiny_model_dir, device="cpu", mode="torch-int8").quant_report.layers


def test_bitsandbytes_cpu_cast_warning_is_filtered(tiny_model_dir, ids, caplog):
    dn = quant.load(tiny_model_dir, device="cpu", mode="int8")
    with caplog.at_level(logging.WARNING):
        dn.logits(ids)
    assert not [r for r in caplog.records if "cast" in r.getMessage()]


def test_bias_may_arrive_before_or_after_its_weight():
    cfg = TransformerConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_layers=1,
                            num_heads=2, num_kv_heads=2, max_position=16, qkv_bias=True)
    torch.manual_seed(0)
    real = Transformer(cfg)
    with torch.device("meta"):
        module = Transformer(cfg)
    q = Quantizer("torch-int8")
    cpu = torch.device("cpu")
    q.begin(module, None, cpu, torch.float32)
    state = real.state_dict()
    names = sorted(state, key=lambda n: (not n.endswith("bias"), n))  # every bias first
    for name in names:
        if not q.place(module, name, state[name], cpu, torch.float32):
            owner, _, leaf = name.rpartition(".")
            module.get_submodule(owner)._parameters[leaf] = nn.Parameter(state[name])
    q.finish(module, cpu, torch.float32)
    x = torch.randint(0, 32, (1, 8))
    assert torch.allclose(module(x), real(x), atol=0.05)


# -- planning: auto and GPU memory, with the GPU's memory query mocked ----------------------
def _meta_8b() -> nn.Module:
    with torch.device("meta"):
        return Transformer(LLADA_8B)


def test_8b_counts_and_estimates():
    module = _meta_8b()
    counts = count(module, targets(module))
    assert 8.0e9 < counts.total < 8.1e9  # LLaDA-8B: 8.02B parameters
    bf16 = counts.weight_bytes("none", torch.bfloat16)
    assert counts.weight_bytes("nf4", torch.bfloat16) < 0.36 * bf16  # 126k-token embeddings
    assert counts.weight_bytes("int8", torch.bfloat16) < 0.6 * bf16


def test_auto_resolves_by_device_and_memory():
    params = 8_000_000_000
    assert resolve_mode("auto", "cpu", params) == quant.CPU_AUTO
    assert resolve_mode("auto", "cuda", params, free_bytes=int(79 * GiB)) == "none"
    assert resolve_mode("auto", "cuda", params, free_bytes=int(15 * GiB)) == "nf4"
    assert resolve_mode("nf4", "cuda", params, free_bytes=1) == "nf4"
    with pytest.raises(QuantError, match="unknown quantization mode 'int4'"):
        resolve_mode("int4", "cpu", params)


@pytest.mark.parametrize(("free_gib", "mode", "named"), [
    (12, "none", "--quant int8 would fit"),
    (8, "none", "--quant nf4 would fit"),
    (8, "int8", "--quant nf4 would fit"),
    (3, "nf4", "no mode fits this GPU"),
])
def test_too_little_gpu_memory_names_the_mode_that_fits(monkeypatch, free_gib, mode, named):
    monkeypatch.setattr(torch.cuda, "mem_get_info",
                        lambda device=None: (int(free_gib * GiB), int(80 * GiB)))
    monkeypatch.setattr("quant.layers.bnb", lambda mode: object())
    q = Quantizer(mode)
    with pytest.raises(QuantError, match=named) as err:
        q.begin(_meta_8b(), None, torch.device("cuda"), torch.bfloat16)
    assert f"{free_gib:.1f} GiB free" in str(err.value)


def test_auto_on_a_small_gpu_plans_nf4(monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (int(15 * GiB), 0))
    monkeypatch.setattr("quant.layers.bnb", lambda mode: object())
    q = Quantizer("auto")
    assert q.begin(_meta_8b(), None, torch.device("cuda"), torch.bfloat16) is False
    assert q.mode == "nf4"


def test_param_counts_reject_unknown_modes():
    with pytest.raises(QuantError):
        ParamCounts(1, 1, 1).weight_bytes("fp8", torch.float32)


def test_torch_int8_refuses_cuda():
    with pytest.raises(QuantError, match="CPU only"):
        Quantizer("torch-int8").begin(_meta_8b(), None, torch.device("cuda"), torch.bfloat16)


# -- the CLI --------------------------------------------------------------------------------
def test_doctor_reports_mode_memory_and_device(tiny_model_dir, capsys):
    from lacuna.cli import main

    assert main(["doctor", "--model", str(tiny_model_dir), "--quant", "int8"]) == 0
    out = capsys.readouterr().out
    assert "quant          int8" in out and "device         cpu" in out
    assert "memory before  0.4 MiB of weights in float32" in out
    assert "memory after" in out and "14 Linear layers" in out


def test_fill_cli_takes_quant(tiny_model_dir, tmp_path, capsys):
    from lacuna.cli import main

    src = tmp_path / "a.py"
    src.write_text(PROMPT)
    argv = ["fill", str(src), "--model", str(tiny_model_dir), "--quant", "nf4", "--steps", "3",
            "--budget", "4"]
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("def add(a, b):\n    return ")


def test_serve_passes_quant_to_the_server(monkeypatch):
    import lsp_server.server as server
    from lacuna.cli import main

    seen = {}
    monkeypatch.setattr(server, "serve", lambda tcp, init: seen.update(init))
    assert main(["serve", "--quant", "nf4"]) == 0
    assert seen == {"quant": "nf4"}


# -- CUDA -----------------------------------------------------------------------------------
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("mode", ["int8", "nf4"])
def test_cuda_quantized_logits_and_fill(tiny_model_dir, reference, ids, mode):
    dn = quant.load(tiny_model_dir, device="cuda", mode=mode, dtype="bfloat16")
    got = dn.logits(ids.cuda()).cpu()
    error = float((got - reference).abs().max() / reference.abs().max())
    assert error <= TOLERANCE[mode] + 0.03  # bf16 compute adds its own rounding
    assert dn.quant_report.bytes_after < 0.6 * dn.quant_report.bytes_before
    holes = find_markers(PROMPT, budget=8)
    result = fill(InfillRequest(PROMPT, holes, options=SamplingOptions(steps=4)), dn)
    assert len(result.fills[0].token_ids) == 6


@pytest.mark.cuda
@cuda
def test_cuda_nf4_never_holds_the_bf16_model(tiny_model_dir):
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    dn = quant.load(tiny_model_dir, device="cuda", mode="nf4", dtype="bfloat16")
    peak = torch.cuda.max_memory_allocated() - base
    assert peak < dn.quant_report.bytes_before
