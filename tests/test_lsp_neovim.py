"""A real third-party client: Neovim's built-in LSP client applies Lacuna code actions.

Needs ``nvim`` (Debian package ``neovim``; ``.ci/run`` installs it). Skips when absent.
One Neovim session (one server) applies two actions in turn: the function body, then a
marker after emoji and CJK text (UTF-16 positions through a real client).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from lsp_support import REPO, server_env

NVIM = shutil.which("nvim")
SCRIPT = REPO / "tests" / "nvim_lsp_e2e.lua"

pytestmark = pytest.mark.skipif(
    NVIM is None,
    reason="nvim not found: install the Debian package 'neovim' (apt-get install -y neovim) "
    "to run the Neovim end-to-end test",
)

SOURCE = (
    "def greet(name):\n"
    "    pass\n"
    "\n"
    "label = '🙂 漢字 [MASK] ok'\n"
)


def edits_of(workspace_edit: dict) -> list[dict]:
    """The text edits of a WorkspaceEdit, whichever form the client's capabilities chose."""
    if "documentChanges" in workspace_edit:
        (change,) = workspace_edit["documentChanges"]
        return change["edits"]
    (edits,) = workspace_edit["changes"].values()
    return edits


def test_neovim_applies_code_actions(tmp_path, tiny_model_dir):
    path = tmp_path / "demo.py"
    path.write_text(SOURCE, encoding="utf-8")
    env = server_env(tiny_model_dir, tmp_path)
    env.update(LACUNA_PYTHON=sys.executable, LACUNA_REPO=str(REPO), LACUNA_FILE=str(path),
               LACUNA_ACTIONS="Write function body|Fill [MASK]", HOME=str(tmp_path),
               XDG_CONFIG_HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path),
               XDG_STATE_HOME=str(tmp_path))
    proc = subprocess.run(
        [NVIM, "--headless", "-u", "NONE", "-i", "NONE", "-n", "-c", f"luafile {SCRIPT}"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"no result from nvim (rc {proc.returncode}): {proc.stderr[-2000:]}"
    got = json.loads(lines[-1])
    assert "error" not in got, got
    body, marker = got["results"]

    # 1. "Write function body": exactly the placeholder is replaced, nothing else
    assert body["titles"] == ["Fill [MASK] markers (1)", "Write function body of greet()"]
    (edit,) = edits_of(body["edit"])
    assert edit["range"] == {"start": {"line": 1, "character": 4},
                             "end": {"line": 1, "character": 8}}
    src = SOURCE.rstrip("\n").split("\n")
    expected = "\n".join([src[0], "    " + edit["newText"], *src[2:]])
    assert "\n".join(body["lines"]) == expected

    # 2. "Fill [MASK] markers" after emoji and CJK: UTF-16 columns, applied by Neovim
    (edit2,) = edits_of(marker["edit"])
    col = len("label = '🙂 漢字 ".encode("utf-16-le")) // 2
    line = expected.count("\n")  # the marker line is the last line
    assert edit2["range"] == {"start": {"line": line, "character": col},
                              "end": {"line": line, "character": col + 6}}
    final = expected.replace("[MASK]", edit2["newText"])
    assert "\n".join(marker["lines"]) == final
    assert marker["lines"][0] == "def greet(name):"
