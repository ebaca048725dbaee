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

/** VS Code setting (under `lacuna.`) -> server key. */
export const SERVER_KEYS: ReadonlyArray<readonly [string, keyof ServerSettings]> = [
  ["modelDirectory", "model"],
  ["device", "device"],
  ["quantization", "quant"],
  ["steps", "steps"],
  ["confidenceThreshold", "threshold"],
  ["temperature", "temperature"],
  ["seed", "seed"],
  ["blockLength", "blockLength"],
  ["marker", "marker"],
  ["budget", "budget"],
  ["inline.budget", "inlineBudget"],
  ["bodyBudget", "bodyBudget"],
  ["contextTokens", "contextTokens"],
  ["syntaxConstraint", "syntaxConstraint"],
  ["lengthPolicy", "lengthPolicy"],
  ["cache", "cache"],
  ["inline.confidenceThreshold", "inlineThreshold"],
  ["inline.contextTokens", "inlineContext"],
  ["inline.lengthPolicy", "inlineLengthPolicy"],
  ["inline.syntaxConstraint", "inlineSyntaxConstraint"],
];

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

function optionalPositiveInt(v: unknown): number | null | undefined {
  if (v === null || v === undefined || v === "" || v === 0) return null; // 0 / empty: "automatic"
  if (typeof v === "number" && Number.isInteger(v) && v > 0) return v;
  return undefined;
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

  const model = config.get<string | null>("modelDirectory");
  if (typeof model === "string" && model.trim() !== "") {
    s.model = expandPath(model.trim(), env);
  }

  const device = config.get<string>("device");
  if (typeof device === "string" && device.trim() !== "") s.device = device.trim();

  const quant = config.get<string>("quantization");
  if (quant !== undefined && quant !== null) {
    if (typeof quant === "string" && QUANT_MODES.includes(quant.toLowerCase())) {
      s.quant = quant.toLowerCase();
    } else bad("quantization", quant, `must be one of ${QUANT_MODES.join(", ")}`);
  }

  for (const [key, target] of [
    ["lengthPolicy", "lengthPolicy"],
    ["inline.lengthPolicy", "inlineLengthPolicy"],
  ] as const) {
    const policy = config.get<string>(key);
    if (policy === undefined || policy === null) continue;
    if (typeof policy === "string" && LENGTH_POLICIES.includes(policy.toLowerCase())) {
      s[target] = policy.toLowerCase();
    } else bad(key, policy, `must be one of ${LENGTH_POLICIES.join(", ")}`);
  }

  for (const [key, target] of [
    ["steps", "steps"],
    ["blockLength", "blockLength"],
  ] as const) {
    const v = config.get<number | null>(key);
    const got = optionalPositiveInt(v);
    if (got === undefined) bad(key, v, "must be a positive integer or empty");
    else s[target] = got;
  }

  // Context windows: empty (null) means the whole document, 0 means none.
  for (const [key, target] of [
    ["contextTokens", "contextTokens"],
    ["inline.contextTokens", "inlineContext"],
  ] as const) {
    const v = config.get<number | null>(key);
    if (v === undefined) continue;
    if (v === null || (typeof v === "number" && Number.isInteger(v) && v >= 0)) s[target] = v;
    else bad(key, v, "must be an integer >= 0 or empty");
  }

  // Confidence thresholds: empty (null) or 0 means "use steps".
  for (const [key, target] of [
    ["confidenceThreshold", "threshold"],
    ["inline.confidenceThreshold", "inlineThreshold"],
  ] as const) {
    const v = config.get<number | null>(key);
    if (v === undefined) continue;
    if (v === null || v === 0) s[target] = null;
    else if (typeof v === "number" && v > 0 && v <= 1) s[target] = v;
    else bad(key, v, "must be in (0, 1] or empty");
  }

  const temperature = config.get<number>("temperature");
  if (temperature !== undefined && temperature !== null) {
    if (typeof temperature === "number" && temperature >= 0 && temperature <= 100) s.temperature = temperature;
    else bad("temperature", temperature, "must be a number from 0 to 100");
  }

  const seed = config.get<number>("seed");
  if (seed !== undefined && seed !== null) {
    if (typeof seed === "number" && Number.isInteger(seed) && seed >= 0) s.seed = seed;
    else bad("seed", seed, "must be an integer >= 0");
  }

  const marker = config.get<string>("marker");
  if (marker !== undefined && marker !== null) {
    if (typeof marker === "string" && marker !== "") s.marker = marker;
    else bad("marker", marker, "must be a non-empty string");
  }

  for (const [key, target] of [
    ["budget", "budget"],
    ["inline.budget", "inlineBudget"],
    ["bodyBudget", "bodyBudget"],
  ] as const) {
    const v = config.get<number>(key);
    if (v === undefined || v === null) continue;
    if (typeof v === "number" && Number.isInteger(v) && v >= 1) s[target] = v;
    else bad(key, v, "must be an integer >= 1");
  }

  for (const [key, target] of [
    ["syntaxConstraint", "syntaxConstraint"],
    ["cache", "cache"],
    ["inline.syntaxConstraint", "inlineSyntaxConstraint"],
  ] as const) {
    const v = config.get<boolean>(key);
    if (typeof v === "boolean") s[target] = v;
    else if (v !== undefined && v !== null) bad(key, v, "must be true or false");
  }

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
