"""Auto-detection reads config.json only and names the family, or says why it cannot."""

import json

import pytest

from infill.models import FAMILIES, detect_family
from infill.models.runtime.chat import looks_instruct
from infill.models.runtime.weights import ModelLoadError

CONFIGS = {
    "lacuna": {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "lacuna": {}},
    "llada": {"model_type": "llada", "architectures": ["LLaDAModelLM"]},
    "llada-moe": {"model_type": "llada", "architectures": ["LLaDAMoEModelLM"], "num_experts": 64},
    "dream": {"model_type": "Dream", "architectures": ["DreamModel"]},
    "diffusion-gemma": {"model_type": "diffusion_gemma",
                        "architectures": ["DiffusionGemmaForBlockDiffusion"]},
    "masked-lm": {"model_type": "modernbert", "architectures": ["ModernBertForMaskedLM"]},
}


@pytest.mark.parametrize("family", sorted(CONFIGS))
def test_each_family_is_named_from_its_config(tmp_path, family):
    (tmp_path / "config.json").write_text(json.dumps(CONFIGS[family]))
    assert detect_family(tmp_path).family == family


def test_lacuna_stays_first():
    assert FAMILIES[0].FAMILY == "lacuna"


@pytest.mark.parametrize("config", [
    {"model_type": "llama", "architectures": ["LlamaForCausalLM"]},
    {"model_type": "gpt2"},
    {},
])
def test_an_unknown_checkpoint_is_refused_with_what_it_is_and_what_is_supported(tmp_path, config):
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError) as e:
        detect_family(tmp_path)
    msg = str(e.value)
    assert repr(config.get("model_type", "<none>")) in msg
    assert ("supported: lacuna, llada-moe, llada, llada2, dream, sdar, rnd1, diffusion-gemma, "
            "masked-lm") in msg


@pytest.mark.parametrize("name, instruct", [
    ("LLaDA-8B-Instruct", True), ("LLaDA-8B-Base", False), ("diffusiongemma-26B-A4B-it", True),
    ("Dream-v0-Base-7B", False), ("DiffuCoder-7B-Instruct", True), ("bert-base-uncased", False),
])
def test_instruct_form_is_read_from_the_checkpoint_name(tmp_path, monkeypatch, name, instruct):
    monkeypatch.delenv("LACUNA_INSTRUCT", raising=False)
    assert looks_instruct(tmp_path / name, {}) is instruct
    snapshot = tmp_path / f"models--org--{name}" / "snapshots" / "0123abc"
    assert looks_instruct(snapshot, {}) is instruct
