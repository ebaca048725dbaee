#!/usr/bin/env bash
# The code-server end-to-end test: build and package the extension, then run it in a real
# VS Code (code-server) against the real Lacuna server. Skips, saying why, when code-server,
# Node 24 or chromium are missing; e2e/README.md says how to install them (about 5 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci
npm run build
npx vsce package --no-dependencies --out lacuna.vsix >/dev/null
exec node e2e/code-server.mjs "$@"
