"""The Lacuna family: real loading, the same network as transformers' Llama, shift realigned."""

import json
import shutil

import pytest
import torch

from infill.models import ModelLoadError, detect_family, load_denoiser


def test_native_network_matches_transformers_llama(tiny_model_dir, tiny_denoiser):
    from transformers import LlamaForCausalLM

    reference = LlamaForCausalLM.from_pretrained(str(tiny_model_dir)).eval()
    ids = torch.tensor([[2, 40, 41, 42, 43, 44, 45, 46]])
    with torch.no_grad():
        want = reference(ids).logits
    got = tiny_denoiser.model(ids, causal=True)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_logits_are_realigned_so_row_i_scores_token_i(tiny_denoiser):
    ids = torch.tensor([[2, 40, 1, 1, 43, 44]])
    raw = tiny_denoiser.model(ids)
    aligned = tiny_denoiser.logits(ids)
    torch.testing.assert_close(aligned[:, 2], raw[:, 1])
    torch.testing.assert_close(aligned[:, 5], raw[:, 4])
    assert not torch.allclose(aligned[:, 2], raw[:, 2])
    rows = tiny_denoiser.logits(ids, positions=torch.tensor([2, 3]))
    torch.testing.assert_close(rows, aligned[:, 2:4])


def test_attention_is_bidirectional(tiny_denoiser):
    a = tiny_denoiser.logits(torch.tensor([[2, 40, 1, 43]]))
    b = tiny_denoiser.logits(torch.tensor([[2, 40, 1, 50]]))
    assert not torch.allclose(a[:, 2], b[:, 2])  # the suffix reaches the hole


def test_detection_reads_only_the_config(tiny_model_dir):
    found = detect_family(tiny_model_dir)
    assert found.family == "lacuna"
    assert found.config["lacuna"]["mask_token_id"] == 1


def test_loading_errors_name_the_problem(tmp_path, tiny_model_dir):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_denoiser(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_denoiser(tmp_path / "empty")

    other = tmp_path / "other"
    shutil.copytree(tiny_model_dir, other)
    config = json.loads((other / "config.json").read_text())
    del config["lacuna"]
    config["model_type"] = "gpt2"
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="'gpt2'.*supported"):
        load_denoiser(other)

    wrong = tmp_path / "wrong-shape"
    shutil.copytree(tiny_model_dir, wrong)
    config = json.loads((wrong / "config.json").read_text())
    config["hidden_size"] = 128
    (wrong / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="shape"):
        load_denoiser(wrong)


def test_sharded_checkpoints_load_through_the_index(tmp_path, tiny_model_dir, tiny_denoiser):
    from safetensors.torch import load_file, save_file

    sharded = tmp_path / "sharded"
    shutil.copytree(tiny_model_dir, sharded)
    state = load_file(str(sharded / "model.safetensors"))
    (sharded / "model.safetensors").unlink()
    names = sorted(state)
    half = len(names) // 2
    weight_map = {}
    for i, part in enumerate([names[:half], names[half:]]):
        file = f"model-0000{i + 1}-of-00002.safetensors"
        save_file({n: state[n] for n in part}, str(sharded / file))
        weight_map.update(dict.fromkeys(part, file))
    (sharded / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    den = load_denoiser(sharded, device="cpu")
    ids = torch.tensor([[2, 40, 1, 43]])
    torch.testing.assert_close(den.logits(ids), tiny_denoiser.logits(ids))

    (sharded / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="lacks shards"):
        load_denoiser(sharded)


def test_the_cache_is_exact_right_after_a_full_pass(tiny_denoiser):
    ids = torch.tensor([[2, 40, 41, 1, 1, 1, 44, 45]])
    positions = torch.tensor([3, 4, 5])
    full = tiny_denoiser.logits(ids, positions=positions)
    prefilled, cache = tiny_denoiser.prefill(ids, positions)
    torch.testing.assert_close(prefilled, full)
    # Recomputing the hole rows against cached context changes nothing while no token moved.
    again = tiny_denoiser.cached_logits(ids, positions, cache, active=positions)
    torch.testing.assert_close(again, full, atol=1e-5, rtol=1e-5)
    # After a commit the hole rows see it; the cached context rows lag behind (approximate).
    ids[0, 4] = 50
    moved = tiny_denoiser.cached_logits(ids, torch.tensor([3, 5]), cache, active=positions)
    assert not torch.allclose(moved, full[:, [0, 2]])


def _with_future_bias(tmp_path, tiny_model_dir, start: float):
    model = tmp_path / f"future-{start}"
    shutil.copytree(tiny_model_dir, model)
    config = json.loads((model / "config.json").read_text())
    config["lacuna"]["future_bias"] = start
    (model / "config.json").write_text(json.dumps(config))
    return load_denoiser(model, device="cpu")


def test_a_very_negative_future_bias_is_the_causal_network(tmp_path, tiny_model_dir,
                                                            tiny_denoiser):
    ids = torch.tensor([[2, 40, 1, 1, 43, 44]])
    causal = tiny_denoiser.model(ids, causal=True)
    annealed = _with_future_bias(tmp_path, tiny_model_dir, -1e4)
    torch.testing.assert_close(annealed.model(ids), causal, atol=1e-5, rtol=1e-5)
    open_ = _with_future_bias(tmp_path, tiny_model_dir, 0.0)
    torch.testing.assert_close(open_.model(ids), tiny_denoiser.model(ids))
    partly = _with_future_bias(tmp_path, tiny_model_dir, -2.0)
    a = partly.logits(torch.tensor([[2, 40, 1, 43]]))
    b = partly.logits(torch.tensor([[2, 40, 1, 50]]))
    assert not torch.allclose(a[:, 2], b[:, 2])  # a finite bias still lets the suffix in


def test_doctor_reports_how_far_attention_was_annealed(tmp_path, tiny_model_dir, tiny_denoiser):
    from infill.models.runtime.report import describe

    assert "future_bias" not in describe(tiny_denoiser)
    report = describe(_with_future_bias(tmp_path, tiny_model_dir, -2.0))
    assert report["future_bias"] == {"mean": -2.0, "min": -2.0, "max": -2.0}


def test_the_cache_is_exact_with_future_biases(tmp_path, tiny_model_dir):
    den = _with_future_bias(tmp_path, tiny_model_dir, -2.0)
    ids = torch.tensor([[2, 40, 41, 1, 1, 1, 44, 45]])
    positions = torch.tensor([3, 4, 5])
    full = den.logits(ids, positions=positions)
    _, cache = den.prefill(ids, positions)
    again = den.cached_logits(ids, positions, cache, active=positions)
    torch.testing.assert_close(again, full, atol=1e-5, rtol=1e-5)
