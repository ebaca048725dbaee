/**
 * `lacuna.*` settings in VS Code -> the server's settings object.
 *
 * The server (lsp_server/config.py) takes camelCase keys, validates each one and warns
 * about unknown ones, so only server keys are sent: the client-side settings
 * (`lacuna.server.*`, `lacuna.inline.*`, `lacuna.liveText`) never reach it. This module
 * must not import `vscode`: it is unit-tested with a plain object standing in for the
 * configuration.
 */

/** What `vscode.workspace.getConfiguration("lacuna")` offers that this module uses. */
export interface ConfigLike {
  get<T>(section: string): T | undefined;
}

/** The settings the server understands (camelCase, as lsp_server/config.py reads them). */
export interface ServerSettings {
  model: string | null;
  device: string;
  quant: string;
  steps: number | null;
  threshold: number | null;
  temperature: number;
  seed: number;
  blockLength: number | null;
  marker: string;
  budget: number;
  inlineBudget: number;
  bodyBudget: number;
  contextTokens: number | null;
  syntaxConstraint: boolean;
  lengthPolicy: string;
  cache: boolean;
  inlineThreshold: number | null;
  inlineContext: number | null;
  inlineLengthPolicy: string;
  inlineSyntaxConstraint: boolean;
}

export const QUANT_MODES = ["none", "int8", "nf4", "torch-int8", "auto"];
export const LENGTH_POLICIES = ["auto", "absorb", "grow", "best_of", "drafts", "cal", "expand"];

/** What a rule makes of a value: the value to send, or one of these. */
const KEEP = Symbol("keep the default");
const BAD = Symbol("not usable");

/** How one setting is read: `read` returns the value to send, `KEEP` or `BAD` (`why`). */
interface Rule {
  read: (v: unknown) => unknown;
  why?: string;
}

const unset = (v: unknown) => v === undefined || v === null;
const isInt = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v);

const oneOf = (choices: readonly string[]): Rule => ({
  read: (v) => unset(v) ? KEEP
    : typeof v === "string" && choices.includes(v.toLowerCase()) ? v.toLowerCase() : BAD,
  why: `must be one of ${choices.join(", ")}`,
});
/** Empty or 0 means "automatic" (null); cleared in VS Code, cleared in the server. */
const positiveOrAuto: Rule = {
  read: (v) => unset(v) || v === "" || v === 0 ? null : isInt(v) && v > 0 ? v : BAD,
  why: "must be a positive integer or empty",
};
/** Context windows: empty (null) means the whole document, 0 means none. */
const window: Rule = {
  read: (v) => v === undefined ? KEEP : v === null || (isInt(v) && v >= 0) ? v : BAD,
  why: "must be an integer >= 0 or empty",
};
/** Confidence thresholds: empty (null) or 0 means "use steps". */
const threshold: Rule = {
  read: (v) => v === undefined ? KEEP : v === null || v === 0 ? null
    : typeof v === "number" && v > 0 && v <= 1 ? v : BAD,
  why: "must be in (0, 1] or empty",
};
const intAtLeast = (low: number): Rule => ({
  read: (v) => unset(v) ? KEEP : isInt(v) && v >= low ? v : BAD,
  why: `must be an integer >= ${low}`,
});
const flag: Rule = {
  read: (v) => unset(v) ? KEEP : typeof v === "boolean" ? v : BAD,
  why: "must be true or false",
};
/** A name or path: blank or unset keeps the default. */
const name: Rule = {
  read: (v) => typeof v === "string" && v.trim() !== "" ? v.trim() : KEEP,
};
const nonEmpty: Rule = {
  read: (v) => unset(v) ? KEEP : typeof v === "string" && v !== "" ? v : BAD,
  why: "must be a non-empty string",
};
const temperature: Rule = {
  read: (v) => unset(v) ? KEEP : typeof v === "number" && v >= 0 && v <= 100 ? v : BAD,
  why: "must be a number from 0 to 100",
};

type Pair = readonly [string, keyof ServerSettings];

/** How each setting is read, and which VS Code settings (under `lacuna.`) map to which
 * server keys, grouped by rule. */
const RULES: ReadonlyArray<readonly [Rule, ...Pair[]]> = [
  [name, ["modelDirectory", "model"], ["device", "device"]],
  [oneOf(QUANT_MODES), ["quantization", "quant"]],
  [oneOf(LENGTH_POLICIES), ["lengthPolicy", "lengthPolicy"],
    ["inline.lengthPolicy", "inlineLengthPolicy"]],
  [positiveOrAuto, ["steps", "steps"], ["blockLength", "blockLength"]],
  [threshold, ["confidenceThreshold", "threshold"],
    ["inline.confidenceThreshold", "inlineThreshold"]],
  [window, ["contextTokens", "contextTokens"], ["inline.contextTokens", "inlineContext"]],
  [temperature, ["temperature", "temperature"]],
  [intAtLeast(0), ["seed", "seed"]],
  [intAtLeast(1), ["budget", "budget"], ["inline.budget", "inlineBudget"],
    ["bodyBudget", "bodyBudget"]],
  [nonEmpty, ["marker", "marker"]],
  [flag, ["syntaxConstraint", "syntaxConstraint"], ["cache", "cache"],
    ["inline.syntaxConstraint", "inlineSyntaxConstraint"]],
];

/** VS Code setting (under `lacuna.`) -> server key. */
export const SERVER_KEYS: ReadonlyArray<Pair> = RULES.flatMap(([, ...pairs]) => pairs);

/** Settings that change how the server process is started: they need a restart. */
export const RESTART_KEYS = ["server.command", "server.pythonPath", "server.args", "server.env"];

export const DEFAULTS: ServerSettings = {
  model: null,
  device: "auto",
  quant: "auto",
  steps: null,
  threshold: 0.9,
  temperature: 0,
  seed: 0,
  blockLength: null,
  marker: "[MASK]",
  budget: 32,
  inlineBudget: 16,
  bodyBudget: 128,
  contextTokens: null,
  syntaxConstraint: true,
  lengthPolicy: "auto",
  cache: true,
  inlineThreshold: 0.9,
  inlineContext: 256,
  inlineLengthPolicy: "auto",
  inlineSyntaxConstraint: false,
};

export interface Mapped {
  settings: ServerSettings;
  /** One line per value that was not usable and fell back to its default. */
  problems: string[];
}

/**
 * Map the `lacuna` configuration section to the server's settings. Unset optional values
 * become `null` (not omitted) so that clearing a setting in VS Code also clears it in a
 * running server. `~` at the start of the model directory expands to `home`; `${workspaceFolder}`
 * expands to `workspaceFolder` when one is given.
 */
export function toServerSettings(
  config: ConfigLike,
  env: { home?: string; workspaceFolder?: string } = {},
): Mapped {
  const s: ServerSettings = { ...DEFAULTS };
  const problems: string[] = [];
  const bad = (key: string, value: unknown, why: string) =>
    problems.push(`lacuna.${key}: ${why}, got ${JSON.stringify(value)}; using the default`);

  for (const [rule, ...pairs] of RULES) {
    for (const [key, target] of pairs) {
      const v = config.get<unknown>(key);
      const got = rule.read(v);
      if (got === BAD) bad(key, v, rule.why ?? "is not usable");
      else if (got !== KEEP) (s as unknown as Record<string, unknown>)[target] = got;
    }
  }
  if (s.model !== null) s.model = expandPath(s.model, env);

  return { settings: s, problems };
}

export function expandPath(p: string, env: { home?: string; workspaceFolder?: string }): string {
  let out = p;
  if (env.workspaceFolder !== undefined) out = out.split("${workspaceFolder}").join(env.workspaceFolder);
  if (env.home && (out === "~" || out.startsWith("~/") || out.startsWith("~\\"))) {
    out = env.home + out.slice(1);
  }
  return out;
}

/** Server keys whose values differ between two mapped settings. */
export function changedKeys(a: ServerSettings, b: ServerSettings): (keyof ServerSettings)[] {
  return (Object.keys(DEFAULTS) as (keyof ServerSettings)[]).filter((k) => a[k] !== b[k]);
}

/** Does a change of these keys reload the model (the status bar shows them)? */
export function touchesModel(keys: readonly string[]): boolean {
  return keys.some((k) => k === "model" || k === "device" || k === "quant");
}
