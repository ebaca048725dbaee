#!/usr/bin/env bash
# The VS Code extension: install its locked dependencies, bundle it, run its unit tests and
# its protocol test against the real server (skipped without .venv), and package lacuna.vsix.
# LACUNA_EXTENSION_E2E=1 also runs the code-server end-to-end test (skips without code-server).
set -euo pipefail
cd "$(dirname "$0")/../vscode-extension"
npm ci --no-audit --no-fund
npm run build
npm test
npm run test:protocol
npx vsce package --no-dependencies --out lacuna.vsix
if [ "${LACUNA_EXTENSION_E2E:-0}" = 1 ]; then
  node e2e/code-server.mjs
fi
echo "extension: built $(pwd)/lacuna.vsix"
