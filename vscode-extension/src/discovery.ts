/**
 * Finding the Lacuna language server: the configured command, else the Python
 * interpreter the user named, else `lacuna` in the workspace's virtual environment,
 * else `lacuna` on PATH. Pure logic over an injected file system view, so it is
 * unit-tested without VS Code.
 */
import * as path from "node:path";

export interface DiscoveryInput {
  /** `lacuna.server.command`: a command line as an array, or a string (split on spaces unless quoted). */
  command?: string | string[] | null;
  /** `lacuna.server.pythonPath`: an interpreter with Lacuna installed (runs `-m lsp_server`). */
  pythonPath?: string | null;
  /** Extra arguments appended to whatever is found (`lacuna.server.args`). */
  args?: string[];
  workspaceFolders: string[];
  /** The PATH environment variable. */
  pathEnv?: string;
  platform: NodeJS.Platform;
  /** Does this file exist and is it executable? */
  isExecutable: (file: string) => boolean;
  home?: string;
}

export interface ServerCommand {
  command: string;
  args: string[];
  /** How it was found, for the log and the status bar tooltip. */
  source: "setting" | "pythonPath" | "workspace venv" | "PATH";
}

export class ServerNotFound extends Error {
  constructor(
    message: string,
    readonly searched: string[],
  ) {
    super(message);
    this.name = "ServerNotFound";
  }
}

/** The virtual-environment folders looked for in each workspace folder, in order. */
export const VENV_DIRS = [".venv", "venv", "env", ".env"];

export const INSTALL_HINT =
  "python3 -m venv .venv && .venv/bin/pip install -e /path/to/lacuna   (or: bash scripts/setup.sh in a Lacuna checkout)";

/** Split a command line on whitespace, honouring "double" and 'single' quotes. */
export function splitCommandLine(line: string): string[] {
  const out: string[] = [];
  let cur = "";
  let quote: string | null = null;
  let has = false;
  for (const ch of line) {
    if (quote) {
      if (ch === quote) quote = null;
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      has = true;
    } else if (/\s/.test(ch)) {
      if (has || cur) out.push(cur);
      cur = "";
      has = false;
    } else {
      cur += ch;
      has = true;
    }
  }
  if (quote) throw new Error(`unterminated ${quote} quote in ${JSON.stringify(line)}`);
  if (has || cur) out.push(cur);
  return out;
}

function expand(p: string, input: DiscoveryInput): string {
  let out = p;
  const ws = input.workspaceFolders[0];
  if (ws !== undefined) out = out.split("${workspaceFolder}").join(ws);
  if (input.home && (out === "~" || out.startsWith("~/"))) out = input.home + out.slice(1);
  return out;
}

function exeNames(base: string, platform: NodeJS.Platform): string[] {
  return platform === "win32" ? [`${base}.exe`, `${base}.cmd`, `${base}.bat`, base] : [base];
}

/** Look `name` up on PATH; a name with a path separator is taken as it is. */
export function which(name: string, input: DiscoveryInput): string | undefined {
  const p = input.platform === "win32" ? path.win32 : path.posix;
  if (name.includes("/") || (input.platform === "win32" && name.includes("\\"))) {
    return input.isExecutable(name) ? name : undefined;
  }
  const sep = input.platform === "win32" ? ";" : ":";
  for (const dir of (input.pathEnv ?? "").split(sep)) {
    if (!dir) continue;
    for (const exe of exeNames(name, input.platform)) {
      const full = p.join(dir, exe);
      if (input.isExecutable(full)) return full;
    }
  }
  return undefined;
}

export function findServer(input: DiscoveryInput): ServerCommand {
  const extra = input.args ?? [];
  const searched: string[] = [];
  const p = input.platform === "win32" ? path.win32 : path.posix;

  // 1. An explicit command wins, and is not second-guessed beyond checking it exists.
  const cmd = input.command;
  const parts = Array.isArray(cmd) ? cmd.filter((s) => s !== "") : cmd ? splitCommandLine(cmd.trim()) : [];
  if (parts.length > 0) {
    const exe = expand(parts[0], input);
    const found = which(exe, input);
    if (!found) {
      throw new ServerNotFound(
        `lacuna.server.command is set to ${JSON.stringify(parts.join(" "))}, but ${JSON.stringify(exe)} ` +
          `was not found${exe.includes("/") ? "" : " on PATH"}. Fix the setting or clear it to let Lacuna search.`,
        [exe],
      );
    }
    return { command: found, args: [...parts.slice(1).map((a) => expand(a, input)), ...extra], source: "setting" };
  }

  // 2. A Python interpreter with Lacuna installed.
  if (input.pythonPath && input.pythonPath.trim() !== "") {
    const py = expand(input.pythonPath.trim(), input);
    const found = which(py, input);
    if (!found) {
      throw new ServerNotFound(
        `lacuna.server.pythonPath is set to ${JSON.stringify(py)}, which was not found. Fix the setting or clear it.`,
        [py],
      );
    }
    return { command: found, args: ["-m", "lsp_server", ...extra], source: "pythonPath" };
  }

  // 3. `lacuna` in a virtual environment of a workspace folder.
  for (const folder of input.workspaceFolders) {
    for (const venv of VENV_DIRS) {
      const bin = input.platform === "win32" ? p.join(folder, venv, "Scripts") : p.join(folder, venv, "bin");
      for (const exe of exeNames("lacuna", input.platform)) {
        const full = p.join(bin, exe);
        searched.push(full);
        if (input.isExecutable(full)) return { command: full, args: ["serve", ...extra], source: "workspace venv" };
      }
    }
  }

  // 4. `lacuna` on PATH.
  searched.push("lacuna on PATH");
  const onPath = which("lacuna", input);
  if (onPath) return { command: onPath, args: ["serve", ...extra], source: "PATH" };

  throw new ServerNotFound(
    "Lacuna's language server (the `lacuna` command) was not found in the workspace's virtual " +
      `environment (${VENV_DIRS.join(", ")}) or on PATH. Install it with: ${INSTALL_HINT} ` +
      "- or set lacuna.server.command (or lacuna.server.pythonPath).",
    searched,
  );
}

/** The command line as one string, quoted where needed, for logs and messages. */
export function describe(cmd: ServerCommand): string {
  return [cmd.command, ...cmd.args].map((a) => (/[\s"']/.test(a) ? JSON.stringify(a) : a)).join(" ");
}
