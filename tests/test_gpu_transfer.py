"""Carrying the default model's training to a GPU machine and its adapter back
(training/gpu.py): parts that fit one device call each, checked when joined."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from infill.models.embedded.smollm2 import gguf_path
from infill.models.runtime.adapter import read_adapter, save_adapter
from infill.models.runtime.weights import ModelLoadError
from training.corpus import humaneval_needles
from training.gpu import join, pack, shrink


@pytest.fixture
def fake_gguf(tmp_path: Path) -> tuple[Path, Path]:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(os.urandom(10_000))
    humaneval = tmp_path / "HumanEval-SingleLineInfilling.jsonl.gz"
    humaneval.write_bytes(b"not read here")
    return gguf, humaneval


def carry(dirs: list[Path], stash: Path) -> None:
    """What the device calls do: each copies its folder's files into one stash."""
    stash.mkdir(exist_ok=True)
    for d in dirs:
        for f in d.iterdir():
            shutil.copy2(f, stash / f.name)


def test_the_base_travels_in_parts_and_is_joined_exactly(fake_gguf, tmp_path):
    gguf, humaneval = fake_gguf
    dirs = pack(tmp_path / "out", gguf, humaneval, part_bytes=4096, wheels=False)
    assert [d.name for d in dirs] == ["1", "2", "3"]
    assert all(sum(f.stat().st_size for f in d.iterdir()) < 4096 + 1024 for d in dirs[1:])
    assert (dirs[0] / humaneval.name).exists()  # the corpus filter goes with the first call
    carry(dirs, tmp_path / "stash")
    joined = join(tmp_path / "stash")
    assert joined.read_bytes() == gguf.read_bytes()


def test_a_missing_or_damaged_part_is_refused(fake_gguf, tmp_path):
    gguf, humaneval = fake_gguf
    dirs = pack(tmp_path / "out", gguf, humaneval, part_bytes=4096, wheels=False)
    carry(dirs[:2], tmp_path / "short")
    with pytest.raises(FileNotFoundError, match="2 of 3 parts"):
        join(tmp_path / "short")
    carry(dirs, tmp_path / "bad")
    part = next((tmp_path / "bad").glob("*.part01"))
    part.write_bytes(b"\0" + part.read_bytes()[1:])
    with pytest.raises(ValueError, match="SHA-256"):
        join(tmp_path / "bad")
    assert not (tmp_path / "bad" / "SmolLM2-135M-Instruct.Q4_1.gguf").exists()


def test_the_adapter_comes_back_in_half_the_bytes_and_loads_the_same(tmp_path):
    tensors = {
        "model.layers.0.mlp.up_proj.weight.lora_A": torch.randn(16, 512),
        "model.layers.0.mlp.up_proj.weight.lora_B": torch.randn(512, 16),
        "model.norm.weight.full": torch.rand(512) + 0.5,
        "model.embed_tokens.weight.rows": torch.tensor([7]),
        "model.embed_tokens.weight.row_values": torch.randn(1, 512),
    }
    save_adapter(tmp_path / "a.safetensors", tensors, lora_scale=2.0, info={"step": 5})
    small = shrink(tmp_path / "a.safetensors", tmp_path / "back" / "a.safetensors")
    got, meta = read_adapter(small)
    assert meta["lora_scale"] == "2.0" and '"step": 5' in meta["info"]
    assert got["model.embed_tokens.weight.rows"].dtype == torch.int64
    for k, v in tensors.items():
        if v.is_floating_point():
            assert got[k].dtype == torch.float16
            assert torch.allclose(got[k].float(), v, rtol=1e-3, atol=1e-3)
    assert small.stat().st_size < 0.6 * (tmp_path / "a.safetensors").stat().st_size


def test_no_corpus_without_the_benchmark_filter(tmp_path):
    with pytest.raises(FileNotFoundError, match="LACUNA_BENCH_DATA"):
        humaneval_needles(tmp_path / "absent.jsonl.gz")


def test_the_gguf_can_come_from_elsewhere(tmp_path, monkeypatch):
    gguf = tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setenv("LACUNA_GGUF", str(gguf))
    assert gguf_path() == gguf
    monkeypatch.setenv("LACUNA_GGUF", str(tmp_path / "absent.gguf"))
    with pytest.raises(ModelLoadError, match="LACUNA_GGUF"):
        gguf_path()


def test_the_corpus_drops_benchmark_files_and_stops_at_its_limit(tmp_path):
    import gzip
    import json

    from training.corpus import list_files

    solution = "    total = sum(n * n for n in numbers if n % 2 == 0)\n"
    humaneval = tmp_path / "HumanEval-SingleLineInfilling.jsonl.gz"
    with gzip.open(humaneval, "wt") as f:
        f.write(json.dumps({"prompt": "def top(numbers, k):\n", "suffix": "",
                            "canonical_solution": solution}) + "\n")
    root = tmp_path / "lib"
    root.mkdir()
    for i in range(5):
        body = f"def f{i}(x):\n" + "    x = x + 1\n" * (20 + i)
        (root / f"m{i}.py").write_text(body + (solution if i == 2 else ""))
    names = [Path(f["path"]).name for f in list_files([str(root)], humaneval=humaneval)]
    assert names == ["m0.py", "m1.py", "m3.py", "m4.py"]  # m2 holds a benchmark line
    capped = list_files([str(root)], limit=2, humaneval=humaneval)
    assert [Path(f["path"]).name for f in capped] == ["m0.py", "m1.py"]
