"""``python -m lsp_server [--tcp HOST:PORT] [--model DIR] [--device D] [--quant Q]``.

The same server as ``lacuna serve``, startable without the console script.
"""

from __future__ import annotations

import argparse

from .server import serve


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m lsp_server", description="Lacuna language server")
    p.add_argument("--tcp", metavar="HOST:PORT", help="listen on TCP instead of stdio")
    p.add_argument("--model", help="model directory (default: $LACUNA_MODEL, then built-in)")
    p.add_argument("--device", help="auto, cpu or cuda (default: auto)")
    p.add_argument("--quant", help="none, int8 or nf4 (default: none)")
    args = p.parse_args(argv)
    init = {"model": args.model, "device": args.device, "quant": args.quant}
    serve(args.tcp, {k: v for k, v in init.items() if v is not None})


if __name__ == "__main__":
    main()
