/**
 * Never serve a user with the tiny random test model silently: its fills are noise. The
 * extension tells by what it configured (`lacuna.modelDirectory` or `LACUNA_MODEL` set to
 * `tiny`, or a directory whose `config.json` says it is the test model) and by what the
 * server reports about the loaded model in each fill's stats (`stats.model`: its `path`, and
 * the `note` the server adds for the test model), and shows one warning per model.
 * `testModelReason` is pure (unit-tested); `TestModelWarning` shows the message.
 */
import * as path from "node:path";
import * as vscode from "vscode";

/** What the server reports about the loaded model (`stats.model` of `lacuna/fill`). */
export interface ModelInfo {
  family?: string | null;
  path?: string | null;
  note?: string | null;
  warning?: string | null;
  test?: boolean | null;
}

/** The name that selects the tiny random test model (server and CLI: `--model tiny`). */
export const TINY_NAME = "tiny";

const SAYS_TEST_MODEL = /\b(test model|random weights)\b/i;

/** `config.json`'s text in a model directory, or undefined (injected: tests fake it). */
export type ReadConfig = (dir: string) => string | undefined;

function noteIn(configText: string | undefined): string | undefined {
  if (!configText) return undefined;
  try {
    const note = (JSON.parse(configText) as { lacuna?: { note?: unknown } })?.lacuna?.note;
    return typeof note === "string" && SAYS_TEST_MODEL.test(note) ? note : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Why `model` (a configured name or directory, or the server's report) is the tiny random
 * test model, or undefined when nothing says so.
 */
export function testModelReason(model: string | ModelInfo | null | undefined, readConfig: ReadConfig): string | undefined {
  if (model === null || model === undefined) return undefined;
  if (typeof model === "string") {
    const m = model.trim();
    if (m === TINY_NAME) return `the model is set to "${TINY_NAME}", the test model with random weights`;
    return m ? noteIn(readConfig(m)) : undefined;
  }
  if (model.test === true) return model.warning || model.note || "the server reports a test model";
  for (const said of [model.warning, model.note]) {
    if (typeof said === "string" && SAYS_TEST_MODEL.test(said)) return said;
  }
  return model.path ? noteIn(readConfig(model.path)) : undefined;
}

export const WARNING =
  "Lacuna is using the tiny test model (random weights): its fills are noise, not suggestions. " +
  "Clear lacuna.modelDirectory (and LACUNA_MODEL) for the embedded default model, or name a real model.";

/** Shows the warning once per configured model. */
export class TestModelWarning {
  private readonly warned = new Set<string>();

  constructor(
    private readonly readConfig: ReadConfig,
    private readonly log?: { warn(message: string): void },
    private readonly show: (message: string, ...items: string[]) => Thenable<string | undefined> =
      (message, ...items) => vscode.window.showWarningMessage(message, ...items),
  ) {}

  /**
   * Check what was configured (`configured`: the model setting, else `LACUNA_MODEL`, else
   * undefined for the embedded default) or what the server reported (`reported`).
   * Returns the reason when the model is the test model (whether or not it warned now).
   */
  check(configured: string | undefined, reported?: ModelInfo | null): string | undefined {
    const reason = testModelReason(reported ?? configured, this.readConfig);
    if (!reason) return undefined;
    const key = configured?.trim() || reported?.path || "default";
    if (this.warned.has(key)) return reason;
    this.warned.add(key);
    this.log?.warn(`${WARNING} (${reason})`);
    void Promise.resolve(this.show(`${WARNING} (${reason})`, "Open Settings")).then((pick) => {
      if (pick === "Open Settings") void vscode.commands?.executeCommand("workbench.action.openSettings", "lacuna.modelDirectory");
    });
    return reason;
  }
}

/** Reads `DIR/config.json`, or undefined when there is none. */
export function readModelConfig(fs: { readFileSync(file: string, enc: "utf8"): string }): ReadConfig {
  return (dir) => {
    try {
      return fs.readFileSync(path.join(dir, "config.json"), "utf8");
    } catch {
      return undefined;
    }
  };
}
