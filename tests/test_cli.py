"""`lacuna fill` and `lacuna doctor` as a user runs them, good input and bad."""

import shutil
import subprocess
import sys

import pytest

from lacuna.cli import main

TWO_MARKERS = "def area(w, h):\r\n    return [MASK]\r\n\r\n# 漢字 🙂 stays\r\nprint([MASK:3])\r\n"


@pytest.fixture
def model_env(tiny_model_dir, monkeypatch):
    monkeypatch.setenv("LACUNA_MODEL", str(tiny_model_dir))
    return tiny_model_dir


def run(capfdbinary, *argv):
    code = main(list(argv))
    out, err = capfdbinary.readouterr()
    return code, out.decode("utf-8"), err.decode("utf-8")


def test_fill_two_markers_keeps_every_other_byte(tmp_path, model_env, capfdbinary):
    src = tmp_path / "two.py"
    src.write_bytes(TWO_MARKERS.encode())
    code, out, err = run(capfdbinary, "fill", str(src), "--seed", "1")
    assert code == 0, err
    assert "[MASK" not in out
    head, rest = TWO_MARKERS.split("[MASK]")
    middle, tail = rest.split("[MASK:3]")
    assert out.startswith(head) and out.endswith(tail)
    fill_1 = out[len(head) : out.index(middle, len(head))]
    assert out[len(head) + len(fill_1) :].startswith(middle)
    assert src.read_bytes() == TWO_MARKERS.encode()  # stdout only, file untouched


def test_the_syntax_constraint_is_on_where_a_grammar_exists_and_off_on_request(
        tmp_path, model_env, capfdbinary):
    src = tmp_path / "f.py"
    src.write_text("x = [MASK]\n", encoding="utf-8")
    code, _, err = run(capfdbinary, "fill", str(src), "--stats")
    assert code == 0 and "'constraint': 'on'" in err, err
    code, _, err = run(capfdbinary, "fill", str(src), "--stats", "--no-constrain")
    assert code == 0 and "'constraint': 'off'" in err, err
    notes = tmp_path / "notes.txt"  # no grammar: filled unconstrained, unless asked by name
    notes.write_text("a [MASK] b", encoding="utf-8")
    assert run(capfdbinary, "fill", str(notes))[0] == 0
    code, _, err = run(capfdbinary, "fill", str(notes), "--constrain")
    assert code == 2 and "no grammar for language id 'plaintext'" in err


def test_fill_ranges_and_write_in_place(tmp_path, model_env, capfdbinary):
    src = tmp_path / "r.txt"
    src.write_text("keep [this] keep", encoding="utf-8")
    code, out, _ = run(capfdbinary, "fill", str(src), "--range", "5:11", "--write")
    assert code == 0 and out == ""
    text = src.read_text(encoding="utf-8")
    assert text.startswith("keep ") and text.endswith(" keep")


def test_write_through_a_symlink_replaces_its_target_and_keeps_the_link(
        tmp_path, model_env, capfdbinary):
    target = tmp_path / "real.txt"
    target.write_text("keep [this] keep", encoding="utf-8")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    code, _, err = run(capfdbinary, "fill", str(link), "--range", "5:11", "--write")
    assert code == 0, err
    assert link.is_symlink() and link.resolve() == target.resolve()
    text = target.read_text(encoding="utf-8")
    assert text != "keep [this] keep" and text.startswith("keep ") and text.endswith(" keep")


def test_stdin_is_filled_to_stdout(model_env, capfdbinary, monkeypatch):
    import io

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"keep [this] keep")))
    code, out, err = run(capfdbinary, "fill", "-", "--range", "1:6-1:12")
    assert code == 0, err
    assert out.startswith("keep ") and out.endswith(" keep") and "[this]" not in out
    code, _, err = run(capfdbinary, "fill", "-", "--write")
    assert code == 2 and "--write needs a file" in err


def test_a_negative_range_gets_the_range_error_not_the_usage(tmp_path, model_env,
                                                             capfdbinary):
    src = tmp_path / "x.txt"
    src.write_text("x = [MASK]", encoding="utf-8")
    code, _, err = run(capfdbinary, "fill", str(src), "--range", "-1:5")
    assert code == 2 and err.startswith("lacuna: error: bad range '-1:5'")
    assert "usage" not in err


def test_doctor_with_a_bad_model_still_prints_what_is_installed(capfdbinary, tmp_path):
    code, out, err = run(capfdbinary, "doctor", "--model", str(tmp_path / "missing"))
    assert code == 2 and err.startswith("lacuna: error:")
    assert "torch" in out and "tree-sitter" in out and "pygls" in out


def test_a_model_without_its_tokenizer_file_is_one_error_line(tmp_path, tiny_model_dir,
                                                              capfdbinary):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    (model / "tokenizer.json").unlink()
    src = tmp_path / "x.py"
    src.write_text("x = [MASK]\n", encoding="utf-8")
    code, _, err = run(capfdbinary, "fill", str(src), "--model", str(model))
    assert code == 2 and err.count("\n") == 1 and "no tokenizer.json" in err


def test_version_names_the_installed_package(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"lacuna {version('lacuna')}"


@pytest.mark.parametrize(
    "content, argv, message",
    [
        (b"abc", ["--range", "2:99"], "outside the document"),
        (b"abcdef", ["--range", "0:4", "--range", "3:5"], "overlap"),
        (b"", [], "empty"),
        (b"\x7fELF\x00\x01\x02", [], "binary"),
        (b"\xff\xfe bad", [], "not UTF-8"),
        (b"x = [MASK:zero]", [], "bad marker length"),
        (b"no markers here", [], "nothing to fill"),
        (b"x = [MASK]", ["--range", "a:b"], "bad range"),
        (b"x = [MASK]", ["--model", "/nonexistent/model"], "does not exist"),
    ],
)
def test_bad_input_is_one_clear_line_and_the_file_is_untouched(
    tmp_path, model_env, capfdbinary, content, argv, message
):
    src = tmp_path / "in.py"
    src.write_bytes(content)
    code, out, err = run(capfdbinary, "fill", str(src), "--write", *argv)
    assert code == 2
    assert out == ""
    lines = [ln for ln in err.splitlines() if ln.startswith("lacuna: error:")]
    assert len(lines) == 1 and message in lines[0], err
    assert src.read_bytes() == content


def test_a_corrupt_model_is_named(tmp_path, tiny_model_dir, capfdbinary):
    bad = tmp_path / "bad-model"
    shutil.copytree(tiny_model_dir, bad)
    weights = bad / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    src = tmp_path / "f.py"
    src.write_text("x = [MASK]\n")
    code, _, err = run(capfdbinary, "fill", str(src), "--model", str(bad))
    assert code == 2 and "corrupt" in err and "model.safetensors" in err

    (bad / "config.json").write_text("{not json")
    code, _, err = run(capfdbinary, "fill", str(src), "--model", str(bad))
    assert code == 2 and "config.json is not valid JSON" in err


def test_a_missing_file_and_a_huge_file(tmp_path, model_env, capfdbinary):
    code, _, err = run(capfdbinary, "fill", str(tmp_path / "nope.py"))
    assert code == 2 and "no such file" in err
    huge = tmp_path / "huge.txt"
    with huge.open("wb") as f:
        f.truncate(17 * 2**20)
    code, _, err = run(capfdbinary, "fill", str(huge))
    assert code == 2 and "MiB" in err


def test_doctor_names_the_model_family_and_size(model_env, capfdbinary):
    code, out, _ = run(capfdbinary, "doctor")
    assert code == 0
    assert "torch" in out and "family         lacuna" in out
    assert "parameters" in out and "device         cpu" in out


def test_the_console_entry_point_runs(tmp_path, model_env):
    src = tmp_path / "m.md"
    src.write_text("# Title\n\nSome [MASK:4] text.\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "lacuna", "fill", str(src)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("# Title\n\nSome ") and proc.stdout.endswith(" text.\n")
