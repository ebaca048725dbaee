#!/usr/bin/env bash
# Set up (scripts/setup.sh) and fill the sample file's [MASK] markers with the default model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/lacuna fill examples/demo.py --stats "$@"
