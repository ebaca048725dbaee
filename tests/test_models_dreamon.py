"""DreamOn: a tiny checkpoint in DreamOn's format (Dream's, its tokenizer adding
``<|expand|>``), detected, loaded and filled under its own ``expand`` length policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from family_checks import DOC, check_interface
from lsp_support import Session, server_env
from tiny_families import build_tiny_dream

from infill.edits import apply_edits, edits_from_result
from infill.engine import fill
from infill.models import detect_family, load_denoiser
from infill.sample import never_sampled
from infill.types import Hole, InfillRequest, Length, LengthOptions, SamplingOptions


def build_tiny_dreamon(path: Path, seed: int = 4) -> Path:
    """Dream-v0's files plus DreamOn's one addition: ``<|expand|>`` right after ``<|mask|>``
    (151666 -> 151667 in the release), in ``added_tokens.json`` and the tokenizer config."""
    build_tiny_dream(path, seed=seed)
    config = json.loads((path / "tokenizer_config.json").read_text())
    mask = next(int(i) for i, t in config["added_tokens_decoder"].items()
                if t["content"] == "<|mask|>")
    config["added_tokens_decoder"][str(mask + 1)] = {
        "content": "<|expand|>", "lstrip": False, "normalized": False, "rstrip": False,
        "single_word": False, "special": True}
    (path / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    added = {t["content"]: int(i) for i, t in config["added_tokens_decoder"].items()}
    (path / "added_tokens.json").write_text(json.dumps(added, indent=2))
    model = json.loads((path / "config.json").read_text())
    assert model["vocab_size"] > mask + 1  # the embedding has a row for it
    return path


@pytest.fixture(scope="module")
def dreamon_dir(tmp_path_factory) -> Path:
    return build_tiny_dreamon(tmp_path_factory.mktemp("models") / "DreamOn-v0-7B")


@pytest.fixture(scope="module")
def dreamon(dreamon_dir):
    return load_denoiser(dreamon_dir, device="cpu")


def test_detected_as_dream_and_known_by_its_expand_token(dreamon_dir, dreamon):
    assert detect_family(dreamon_dir).family == "dream"
    check_interface(dreamon, "dream")
    assert dreamon.tokenizer.convert_ids_to_tokens(dreamon.expand_id) == "<|expand|>"
    assert dreamon.expand_id == dreamon.mask_id + 1 and dreamon.length_policy == "expand"
    # Every other policy never samples it (the tokenizer now calls it special).
    assert dreamon.expand_id in never_sampled(dreamon)


def test_a_plain_dream_has_no_expand(tmp_path):
    plain = load_denoiser(build_tiny_dream(tmp_path / "Dream-v0-Base-7B"), device="cpu")
    assert plain.expand_id is None and plain.length_policy is None


@pytest.mark.parametrize("cache", [False, True])
def test_fills_stay_inside_the_holes_under_expand(dreamon, cache):
    first, second = DOC.index("a + b"), DOC.index("a - b")
    holes = [Hole(first, first + 5, Length.exact(3)), Hole(second, second + 5, Length.auto(6))]
    req = InfillRequest(DOC, holes, options=SamplingOptions(seed=1, cache=cache),
                        length=LengthOptions(initial=2), line_aware=False)
    result = fill(req, dreamon)
    info = result.length[0]
    assert info["policy"] == "expand" and info["expandId"] == dreamon.expand_id
    assert len(result.fills[0].token_ids) == 3 and len(result.fills[1].token_ids) <= 6
    for f in result.fills:
        assert not {dreamon.mask_id, dreamon.expand_id} & set(f.token_ids)
    out = apply_edits(DOC, edits_from_result(result))
    assert out.startswith(DOC[:first]) and out.endswith(DOC[second + 5:])
    assert DOC[first + 5:second] in out
    again = fill(req, dreamon)
    assert [f.text for f in again.fills] == [f.text for f in result.fills]  # deterministic


def test_the_cli_says_expand_in_doctor_and_in_fill_stats(dreamon_dir, tmp_path, capsys):
    from lacuna.cli import main

    assert main(["doctor", "--model", str(dreamon_dir), "--device", "cpu"]) == 0
    rows = capsys.readouterr().out
    assert "length policy" in rows and "expand (DreamOn" in rows
    doc = tmp_path / "a.py"
    doc.write_text("x = [MASK]\n", encoding="utf-8")
    assert main(["fill", str(doc), "--model", str(dreamon_dir), "--device", "cpu",
                 "--budget", "4", "--stats"]) == 0
    assert "'policy': 'expand'" in capsys.readouterr().err
    assert main(["fill", str(doc), "--model", str(dreamon_dir), "--device", "cpu",
                 "--budget", "4", "--stats", "--length-policy", "absorb"]) == 0
    assert "'policy': 'absorb'" in capsys.readouterr().err


def test_lacuna_fill_stats_name_the_policy_and_the_setting_changes_it(dreamon_dir, tmp_path):
    s = Session(server_env(dreamon_dir, tmp_path))
    s.start()
    try:
        s.initialize({"budget": 4, "device": "cpu"})
        uri = "file:///work/a.py"
        s.open(uri, "x = [MASK]\n")
        out = s.request("lacuna/fill", {"textDocument": {"uri": uri}, "version": 1})
        assert out["stats"]["length"][0]["policy"] == "expand"  # auto: DreamOn's own
        s.configure({"lengthPolicy": "absorb"})
        out = s.request("lacuna/fill", {"textDocument": {"uri": uri}, "version": 1})
        assert out["stats"]["length"][0]["policy"] == "absorb"
    finally:
        assert s.stop() == 0


def test_every_editor_setting_offers_expand():
    import re

    from infill.types import POLICIES

    root = Path(__file__).resolve().parent.parent / "vscode-extension"
    manifest = json.loads((root / "package.json").read_text(encoding="utf-8"))
    props = manifest["contributes"]["configuration"]
    props = props if isinstance(props, dict) else {k: v for s in props
                                                   for k, v in s["properties"].items()}
    props = props.get("properties", props)
    for key in ("lacuna.lengthPolicy", "lacuna.inline.lengthPolicy"):
        assert props[key]["enum"] == list(POLICIES)
        assert len(props[key]["enumDescriptions"]) == len(POLICIES)
    ts = (root / "src" / "settings.ts").read_text(encoding="utf-8")
    listed = re.search(r"LENGTH_POLICIES = \[(.*?)\]", ts).group(1)
    assert json.loads(f"[{listed}]") == list(POLICIES) and "expand" in POLICIES


@pytest.mark.parametrize("cache", [False, True])
def test_a_network_that_wants_room_grows_its_hole_to_the_budget(dreamon_dir, cache):
    """The expand row of the head turned toward the hidden states: the real network now
    commits ``<|expand|>`` first, the hole grows to its budget, then text fills it (with the
    cache dropped at each layout change)."""
    import torch

    den = load_denoiser(dreamon_dir, device="cpu")
    at = DOC.index("a - b")
    with torch.no_grad():
        ids = torch.tensor([den.tokenizer(DOC)["input_ids"]])
        hidden = den.model.hidden(ids).mean(dim=(0, 1))
        den.model.lm_head.weight[den.expand_id] = 40 * hidden / hidden.norm() ** 2
    req = InfillRequest(DOC, [Hole(at, at + 5, Length.auto(6))], line_aware=False,
                        options=SamplingOptions(cache=cache), length=LengthOptions(initial=1))
    result = fill(req, den)
    info = result.length[0]
    assert info["expanded"] == 5 and info["tokens"] == [6]
    assert den.expand_id not in result.fills[0].token_ids
    out = apply_edits(DOC, edits_from_result(result))
    assert out.startswith(DOC[:at]) and out.endswith(DOC[at + 5:])
