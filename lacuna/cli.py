"""The ``lacuna`` command: fill a file, check the install, serve editors.

Errors are one line on stderr, exit status 2, and the file is left as it was.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from infill.types import POLICIES
from lsp_server.config import Settings
from quant import CHOICES as QUANT_MODES

#: One place for every default: the server's settings (docs/editors.md says why each).
DEFAULTS = Settings()

#: Files larger than this are refused before reading: a fill needs a window, not the world.
MAX_FILE_BYTES = 16 * 1024 * 1024

EXTENSION_LANGUAGES = {
    ".py": "python", ".pyi": "python", ".js": "javascript", ".mjs": "javascript",
    ".cjs": "javascript", ".jsx": "javascriptreact", ".ts": "typescript",
    ".tsx": "typescriptreact", ".rs": "rust", ".go": "go", ".java": "java", ".c": "c",
    ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".hpp": "cpp", ".md": "markdown",
    ".markdown": "markdown", ".rst": "restructuredtext", ".txt": "plaintext",
}


class CliError(Exception):
    """A user-facing failure; the message is printed as is."""


def read_text_file(path: Path) -> str:
    """The file's text, byte-exact (no newline translation), or a CliError saying why not."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except OSError as e:
        raise CliError(f"{path}: {e.strerror}") from None
    if path.is_dir():
        raise CliError(f"{path} is a directory, not a file")
    if size > MAX_FILE_BYTES:
        raise CliError(f"{path} is {size / 2**20:.1f} MiB; Lacuna fills files up to "
                       f"{MAX_FILE_BYTES // 2**20} MiB")
    data = path.read_bytes()
    if b"\x00" in data[:65536]:
        raise CliError(f"{path} looks binary (it contains NUL bytes); Lacuna fills text files")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CliError(f"{path} is not UTF-8 text (bad byte at offset {e.start})") from None


def read_text_stdin() -> str:
    """Standard input's text, byte-exact, with the checks a file gets."""
    data = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise CliError(f"stdin holds over {MAX_FILE_BYTES // 2**20} MiB; Lacuna fills "
                       f"documents up to {MAX_FILE_BYTES // 2**20} MiB")
    if b"\x00" in data[:65536]:
        raise CliError("stdin looks binary (it contains NUL bytes); Lacuna fills text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CliError(f"stdin is not UTF-8 text (bad byte at offset {e.start})") from None


def write_text_atomically(path: Path, text: str) -> None:
    """Replace ``path`` in one rename, keeping its permissions; never a half-written file.
    A symlink stays a symlink: its target is the file replaced."""
    path = Path(os.path.realpath(path))
    mode = path.stat().st_mode
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8"))
        os.chmod(tmp, mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load(model: str | None, device: str | None, quant: str | None = "auto"):
    from infill.models.default import resolve_model
    from quant import load

    path, note = resolve_model(model)
    if note:
        print(f"lacuna: {note}", file=sys.stderr)
    return load(path, device=device or "auto", mode=quant or "auto"), path


def cmd_fill(args: argparse.Namespace) -> int:
    from infill.edits import apply_edits, edits_from_result
    from infill.engine import fill
    from infill.holes import find_markers, holes_from_ranges, parse_range, validate_holes

    path = Path(args.file)
    if args.file == "-":
        if args.write:
            raise CliError("--write needs a file; the text from stdin is filled to stdout")
        text = read_text_stdin()
    else:
        text = read_text_file(path)
    if args.range:
        holes = holes_from_ranges([parse_range(r, text) for r in args.range],
                                  budget=args.budget)
    else:
        holes = find_markers(text, args.marker, budget=args.budget)
    language = args.language or EXTENSION_LANGUAGES.get(path.suffix.lower(), "plaintext")
    constraint, constraint_state = _syntax_constraint(language, args.constrain)
    request = fill_request(args, text, holes, language, constrained=constraint is not None)
    # Validate before paying for the model: bad input fails in milliseconds.
    validate_holes(text, holes)
    loading = time.perf_counter()
    denoiser, _ = _load(args.model, args.device, args.quant)
    loaded = time.perf_counter() - loading
    result = fill(request, denoiser, constraint=constraint)
    filled = apply_edits(text, edits_from_result(result))
    if args.write:
        write_text_atomically(path, filled)
    else:
        sys.stdout.buffer.write(filled.encode("utf-8"))
        sys.stdout.flush()
    if result.constraint_satisfied is False:
        print("lacuna: warning: the fill still has syntax errors the constraint could not "
              "repair within its remask budget", file=sys.stderr)
    if args.stats:
        stats = {**result.stats(), "constraint": constraint_state,
                 "loadSeconds": round(loaded, 3)}
        print(f"lacuna: {stats}", file=sys.stderr)
    return 0


def fill_request(args: argparse.Namespace, text: str, holes, language: str,
                 constrained: bool | None = None):
    """The ``InfillRequest`` that ``lacuna fill`` builds from its flags (the benchmarks
    build theirs here too, so that "no flags" means the same everywhere). ``constrained``:
    whether a syntax constraint serves it (default: what ``--constrain`` says)."""
    from infill.types import InfillRequest, LengthOptions, SamplingOptions

    threshold = args.threshold
    if threshold is None and args.steps is None:
        threshold = DEFAULTS.threshold
    options = SamplingOptions(
        steps=args.steps, block_length=args.block_length, temperature=args.temperature,
        top_k=args.top_k, top_p=args.top_p, seed=args.seed, threshold=threshold,
        cache=args.cache,
    )
    if constrained is None:
        constrained = DEFAULTS.syntax_constraint if args.constrain is None else args.constrain
    return InfillRequest(text, holes, language=language, options=options,
                         constrain=constrained, context_tokens=args.context,
                         length=LengthOptions(policy=args.length_policy))


def _syntax_constraint(language: str, wanted: bool | None):
    """``--constrain`` asks for the constraint by name (an error without a grammar),
    ``--no-constrain`` turns it off, neither means the default: on where a grammar."""
    from grammars import constraint_for

    want = "require" if wanted else (wanted if wanted is False else DEFAULTS.syntax_constraint)
    try:
        return constraint_for(language, want)
    except LookupError as e:
        raise CliError(f"{e}: drop --constrain or pass --language with a supported "
                       "one") from None


def cmd_doctor(args: argparse.Namespace) -> int:
    import platform

    import torch

    rows: list[tuple[str, str]] = [
        ("python", platform.python_version()),
        ("torch", torch.__version__),
        ("cuda", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "not available"),
    ]
    rows.append(("bitsandbytes", _version_of("bitsandbytes")))
    rows.append(("tree-sitter", _version_of("tree_sitter", dist="tree-sitter")))
    rows.append(("pygls", _version_of("pygls")))
    from infill.drafts import drafter_of
    from infill.expand import expand_id_of
    from infill.models import detect_family
    from infill.models.default import resolve_model
    from infill.models.runtime.report import describe
    from infill.models.runtime.weights import ModelLoadError
    from quant import load

    try:
        path, note = resolve_model(args.model)
        rows.append(("model", str(path)))
        if note:
            rows.append(("note", note))
        rows.append(("family", detect_family(path).family))
        denoiser = load(path, device=args.device or "auto", mode=args.quant or "auto")
    except ModelLoadError:
        _print_rows(rows)  # what is installed is worth seeing most when a model fails
        raise
    info = describe(denoiser)
    report = denoiser.quant_report
    rows += [
        ("parameters", f"{report.parameters or info['parameters']:,}"),
        *([("active", f"{info['active_parameters']:,} parameters per token (mixture of "
                      "experts)")] if "active_parameters" in info else []),
        ("dtype", str(info["dtype"])),
        *([("format", str(info["format"]))] if "format" in info else []),
        *report.rows(),
        ("window", f"{info['max_length']} tokens"),
    ]
    rows += [(key, str(info[key])) for key in ("attention", "infill") if key in info]
    if "future_bias" in info:  # attention annealed from causal (see docs/default-model.md)
        fb = info["future_bias"]
        rows.append(("future bias", f"mean {fb['mean']}, min {fb['min']}, max {fb['max']}"))
    if drafter_of(denoiser) is not None:
        rows.append(("length policy", f"{denoiser.length_policy} (the causal view drafts, "
                                      "the text after the hole picks)"))
    expand_id = expand_id_of(denoiser)
    if expand_id is not None:
        ends = ", ".join(str(i) for i in sorted(denoiser.end_ids))
        rows.append(("length policy", f"expand (DreamOn: <|expand|> {expand_id} makes a mask "
                                      f"two, the end token {ends} deletes one)"))
    _print_rows(rows)
    return 0


def _print_rows(rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}", flush=True)


def _version_of(module: str, dist: str | None = None) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist or module)
    except metadata.PackageNotFoundError:
        return "not installed"


def cmd_serve(args: argparse.Namespace) -> int:
    from lsp_server.server import serve

    init = {k: v for k, v in {"model": args.model, "device": args.device,
                              "quant": args.quant}.items() if v}
    serve(args.tcp, init)
    return 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lacuna")
    except PackageNotFoundError:
        return "(not installed)"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lacuna", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"lacuna {_version()}")
    sub = p.add_subparsers(dest="command", required=True)

    f = sub.add_parser("fill", help="fill [MASK] markers or character ranges of a file")
    f.add_argument("file", help="the file to fill, or - for standard input")
    f.add_argument("--range", action="append", metavar="START:END",
                   help="character offsets to fill, or LINE:COL-LINE:COL as editors show "
                        "positions (1-based; repeatable); default: every marker")
    f.add_argument("--marker", default=DEFAULTS.marker,
                   help=f"marker text (default: {DEFAULTS.marker})")
    f.add_argument("--budget", type=int, default=DEFAULTS.budget,
                   help=f"token budget of auto-length holes (default: {DEFAULTS.budget})")
    f.add_argument("--steps", type=int,
                   help="denoising steps on a schedule, instead of the threshold")
    f.add_argument("--block-length", type=int, help="semi-autoregressive block length")
    f.add_argument("--threshold", type=float,
                   help=f"commit every token at least this confident, at least one a step "
                        f"(default: {DEFAULTS.threshold} unless --steps is given: 0.37x "
                        f"the latency of one step per token, measured)")
    f.add_argument("--temperature", type=float, default=DEFAULTS.temperature)
    f.add_argument("--top-k", type=int)
    f.add_argument("--top-p", type=float)
    f.add_argument("--seed", type=int, default=DEFAULTS.seed)
    f.add_argument("--cache", action=argparse.BooleanOptionalAction, default=DEFAULTS.cache,
                   help="reuse the context's keys/values between steps (default: on; "
                        "faster, approximate)")
    f.add_argument("--length-policy", choices=POLICIES, default=DEFAULTS.length_policy,
                   help="how auto-length holes find their length (default: auto, the "
                        "model's own: drafts for the embedded default, expand for DreamOn, "
                        "else absorb)")
    f.add_argument("--context", type=int, help="context tokens around the holes")
    f.add_argument("--language", help="LSP language id (default: from the file extension)")
    f.add_argument("--constrain", action=argparse.BooleanOptionalAction, default=None,
                   help="tree-sitter syntax constraint (default: on where a grammar exists; "
                        "measured: the same pass@1, half the new syntax errors, +15%% time)")
    f.add_argument("--write", action="store_true", help="write the file in place")
    f.add_argument("--stats", action="store_true", help="print sampler statistics to stderr")
    _model_args(f)
    f.set_defaults(run=cmd_fill)

    d = sub.add_parser("doctor", help="show what is installed and which model would load")
    _model_args(d)
    d.set_defaults(run=cmd_doctor)

    s = sub.add_parser("serve", help="run the language server (stdio by default)")
    s.add_argument("--tcp", metavar="HOST:PORT", help="listen on TCP instead of stdio")
    _model_args(s)
    s.set_defaults(run=cmd_serve)
    return p


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model",
                   help="model directory, 'default' (the embedded SmolLM2 default) or 'tiny' "
                        "(the random test model); default: $LACUNA_MODEL, else 'default'")
    p.add_argument("--device", help="auto, cpu or cuda (default: auto)")
    p.add_argument("--quant", choices=QUANT_MODES,
                   help="weight quantization (default: auto: bf16/fp32 where it fits, else "
                        "nf4 on CUDA; the fastest measured mode on the CPU)")


def _joined_ranges(argv: list[str]) -> list[str]:
    """``--range -1:5`` as ``--range=-1:5``: argparse would read a value starting with
    ``-`` as an option and print its usage instead of the range's own error."""
    out: list[str] = []
    for i, arg in enumerate(argv):
        if out and out[-1] == "--range" and arg.startswith("-") and arg != "-" and i:
            out[-1] = f"--range={arg}"
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(_joined_ranges(sys.argv[1:] if argv is None else argv))
    # After parsing: --version and --help answer without importing torch.
    from infill.models.runtime.weights import ModelLoadError
    from infill.types import InfillError

    try:
        return args.run(args)
    except (CliError, InfillError, ModelLoadError) as e:
        print(f"lacuna: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lacuna: interrupted; nothing was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
