#!/usr/bin/env bash
# The VS Code extension: install its locked dependencies, bundle it, run its unit tests and
# its protocol test against the real server (skipped without .venv), and package lacuna.vsix.
# LACUNA_EXTENSION_E2E=1 also runs the code-server end-to-end test with the embedded default
# model (install code-server first: bash scripts/editors.sh); it fails when anything it needs
# is missing; then its quick variant with the tiny test model, which must show the
# extension's warning. Screenshots and logs: artifacts/vscode-e2e/ and artifacts/vscode-e2e-tiny/.
set -euo pipefail
cd "$(dirname "$0")/../vscode-extension"
npm ci --no-audit --no-fund
npm run build
npm test
npm run test:protocol
npx vsce package --no-dependencies --out lacuna.vsix
echo "extension: built $(pwd)/lacuna.vsix"
if [ "${LACUNA_EXTENSION_E2E:-0}" = 1 ]; then
  t=$SECONDS
  node e2e/code-server.mjs --require
  echo "extension: the code-server end-to-end test took $((SECONDS - t)) s"
  # The same session with the tiny random model: the extension must warn (about 1.5 min).
  t=$SECONDS
  node e2e/code-server.mjs --require --model tiny --screenshots ../artifacts/vscode-e2e-tiny
  echo "extension: its tiny-model variant took $((SECONDS - t)) s"
fi
