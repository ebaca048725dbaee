"""Issue 21 defect 11: every file a model directory names lies inside that directory."""

import json
import shutil

import pytest
from tiny_families import build_tiny_dream, build_tiny_llada

from infill.models import load_denoiser
from infill.models.embedded.tiny import build_tiny_model
from infill.models.runtime.weights import ModelLoadError, inside

OUTSIDE = "outside the model directory"


@pytest.mark.parametrize("name", ["/etc/passwd", "../../outside/model.safetensors",
                                  "a/../../x", "..\\..\\x", "C:\\Windows\\x", "", 5])
def test_names_that_leave_the_directory_are_refused(tmp_path, name):
    with pytest.raises(ModelLoadError, match=OUTSIDE if isinstance(name, str) and name
                       else "not a file name"):
        inside(tmp_path, name, "index")


def test_names_inside_are_kept(tmp_path):
    assert inside(tmp_path, "sub/model-1.safetensors", "index") == (
        tmp_path / "sub" / "model-1.safetensors")


def _point_index_at(model, target: str) -> None:
    index = model / "model.safetensors.index.json"
    data = json.loads(index.read_text())
    first = next(iter(data["weight_map"]))
    data["weight_map"][first] = target
    index.write_text(json.dumps(data))


@pytest.mark.parametrize("target", ["../../outside/model.safetensors", "/etc/passwd"])
def test_a_shard_index_entry_outside_is_refused(tmp_path, target):
    model = build_tiny_llada(tmp_path / "a" / "b" / "model")
    outside = tmp_path / "a" / "outside"
    outside.mkdir()
    shutil.copy(model / "model-00001-of-00002.safetensors", outside / "model.safetensors")
    _point_index_at(model, target)
    with pytest.raises(ModelLoadError, match=f"names '{target}'.*{OUTSIDE}"):
        load_denoiser(model, device="cpu")


def test_an_index_outside_is_refused_for_transformers_families_too(tmp_path):
    """Families loaded by transformers get the check before transformers follows it."""
    from tiny_families import build_tiny_bert

    model = build_tiny_bert(tmp_path / "bert")
    (model / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {"x": "/etc/passwd"}}))
    with pytest.raises(ModelLoadError, match=OUTSIDE):
        load_denoiser(model, device="cpu")


def test_an_adapter_outside_is_refused(tmp_path):
    model = build_tiny_model(tmp_path / "tiny")
    config = json.loads((model / "config.json").read_text())
    config["lacuna"]["adapter"] = "/etc/passwd"
    (model / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match=f"lacuna.adapter names '/etc/passwd'.*{OUTSIDE}"):
        load_denoiser(model, device="cpu")


def test_a_tokenizer_file_outside_is_refused(tmp_path):
    model = build_tiny_dream(tmp_path / "dream")
    tc = json.loads((model / "tokenizer_config.json").read_text())
    tc["vocab_file"] = "../../../etc/passwd"
    (model / "tokenizer_config.json").write_text(json.dumps(tc))
    with pytest.raises(ModelLoadError, match=f"vocab_file.*{OUTSIDE}"):
        load_denoiser(model, device="cpu")


def test_links_inside_a_snapshot_still_load(tmp_path):
    """A hub snapshot's files are symlinks into ../../blobs: a name inside, a link out."""
    model = build_tiny_llada(tmp_path / "repo" / "snapshots" / "abc")
    blobs = tmp_path / "repo" / "blobs"
    blobs.mkdir()
    for f in model.glob("*.safetensors"):
        f.rename(blobs / f.name)
        f.symlink_to(blobs / f.name)
    assert load_denoiser(model, device="cpu").family == "llada"
