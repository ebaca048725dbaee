"""Each setting is declared once (lsp_server/config.py): its check, its default and the
docs' reason for it. The CLI, the docs table and the VS Code extension follow it."""

from __future__ import annotations

import json
import math
import re
from dataclasses import fields
from pathlib import Path

import pytest

from lsp_server.config import MAX_SEED, Settings, camel, markdown_table, merge, vscode_name

ROOT = Path(__file__).resolve().parent.parent
EXTENSION = ROOT / "vscode-extension"


@pytest.mark.parametrize("key, value", [
    ("temperature", math.nan), ("temperature", math.inf), ("temperature", 1e-300),
    ("temperature", -1), ("threshold", math.nan), ("inlineThreshold", -math.inf),
    ("seed", MAX_SEED + 1), ("seed", -1), ("budget", 1.5), ("syntaxConstraint", "yes"),
])
def test_a_value_no_fill_could_use_is_refused_and_the_old_one_kept(key, value):
    settings, problems = merge(Settings(), {key: value})
    assert settings == Settings()
    assert len(problems) == 1 and problems[0].startswith(key)


def test_the_extremes_that_work_are_accepted():
    settings, problems = merge(Settings(), {"temperature": 0.01, "seed": MAX_SEED,
                                            "threshold": 1})
    assert problems == []
    assert (settings.temperature, settings.seed, settings.threshold) == (0.01, MAX_SEED, 1.0)


def test_camel_snake_and_wrapped_keys_name_the_same_setting():
    for raw in ({"inlineBudget": 8}, {"inline_budget": 8}, {"lacuna": {"inlineBudget": 8}}):
        assert merge(Settings(), raw) == (Settings(inline_budget=8), [])
    assert merge(Settings(), {"inlinebudget": 8})[1] == ["unknown setting 'inlinebudget'"]
    assert merge(Settings(), {5: 1})[1] == ["unknown setting 5"]


def test_every_setting_has_a_meaning_and_every_default_a_reason():
    for f in fields(Settings):
        assert f.metadata["meaning"], f.name
        if f.name != "seed":  # a seed's default is arbitrary by nature
            assert f.metadata["why"], f.name


def test_the_docs_table_is_the_generated_one():
    text = (ROOT / "docs" / "editors.md").read_text(encoding="utf-8")
    table = text.split("<!-- settings:begin -->\n")[1].split("<!-- settings:end -->")[0]
    assert table == markdown_table(), "run: python -m lsp_server.config"


def test_the_cli_fills_with_the_servers_defaults():
    from lacuna.cli import build_parser, fill_request

    args = build_parser().parse_args(["fill", "FILE"])
    request = fill_request(args, "x", [], "python")
    defaults = Settings()
    assert request.options.threshold == defaults.threshold
    assert request.options.cache is defaults.cache
    assert request.constrain is defaults.syntax_constraint
    assert (args.budget, args.marker, args.length_policy, args.temperature, args.seed) == (
        defaults.budget, defaults.marker, defaults.length_policy, defaults.temperature,
        defaults.seed)


def _package_defaults() -> dict[str, object]:
    manifest = json.loads((EXTENSION / "package.json").read_text(encoding="utf-8"))
    configuration = manifest["contributes"]["configuration"]
    sections = configuration if isinstance(configuration, list) else [configuration]
    return {key.removeprefix("lacuna."): spec.get("default")
            for section in sections for key, spec in section["properties"].items()}


def test_the_extensions_package_json_declares_every_setting_with_its_default():
    declared = _package_defaults()
    for f in fields(Settings):
        assert vscode_name(f.name) in declared, f"package.json lacks lacuna.{vscode_name(f.name)}"
        assert declared[vscode_name(f.name)] == f.default, f.name


def test_the_extensions_settings_module_maps_and_defaults_every_setting():
    source = (EXTENSION / "src" / "settings.ts").read_text(encoding="utf-8")
    mapped = dict(re.findall(r'\["([\w.]+)", "(\w+)"[,\]]', source))
    defaults_block = source.split("export const DEFAULTS")[1].split("};")[0]
    ts_defaults = {k: json.loads(v) for k, v in
                   re.findall(r"^\s+(\w+): (.+),$", defaults_block, flags=re.M)}
    for f in fields(Settings):
        assert mapped.get(vscode_name(f.name)) == camel(f.name), f.name
        assert ts_defaults[camel(f.name)] == f.default, f.name
