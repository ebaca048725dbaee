/**
 * The status bar item: model family, device, quantization, busy/idle, and whether inline
 * suggestions are on. `render` is pure (unit-tested); `StatusBar` puts it on screen.
 */
import * as vscode from "vscode";

export type ServerState = "starting" | "ready" | "stopped" | "not found" | "failed";

export interface StatusModel {
  state: ServerState;
  /** Model family once a fill reported it (e.g. "llada", "dream"), else undefined. */
  family?: string;
  modelPath?: string;
  /** Why the loaded (or configured) model is the tiny random test model, if it is. */
  testModel?: string;
  device: string;
  quant: string;
  inline: boolean;
  /** Fills and inline requests running now. */
  busy: number;
  /** "step 3/12" while a fill reports progress. */
  step?: string;
  command?: string;
  problem?: string;
}

export interface Rendered {
  text: string;
  tooltip: string;
  warning: boolean;
}

export function render(m: StatusModel): Rendered {
  const model = `${m.family ?? "model not loaded"}${m.testModel ? " (test model)" : ""}`;
  const quant = m.quant === "none" ? "" : ` · ${m.quant}`;
  const details = `${model} · ${m.device}${quant}`;
  const inline = m.inline ? "" : " $(circle-slash)";
  let icon: string;
  let text: string;
  switch (m.state) {
    case "starting":
      icon = "$(loading~spin)";
      text = `${icon} Lacuna: starting`;
      break;
    case "not found":
      text = "$(error) Lacuna: server not found";
      break;
    case "failed":
      text = "$(error) Lacuna: server failed";
      break;
    case "stopped":
      text = "$(debug-stop) Lacuna: stopped";
      break;
    default:
      if (m.busy > 0) text = `$(loading~spin) Lacuna: ${m.step ?? "working"} · ${details}`;
      else text = `${m.testModel ? "$(warning)" : "$(sparkle)"} Lacuna: ${details}${inline}`;
  }
  const lines = [
    `Lacuna language server: ${m.state}${m.busy > 0 ? ` (busy: ${m.busy})` : " (idle)"}`,
    `Model: ${m.family ?? "not loaded yet (loads on the first fill)"}${m.modelPath ? ` - ${m.modelPath}` : ""}`,
    `Device: ${m.device} · quantization: ${m.quant}`,
    `Inline suggestions: ${m.inline ? "on" : "off"}`,
  ];
  if (m.command) lines.push(`Server: ${m.command}`);
  if (m.testModel) lines.push(`Warning: the tiny test model (random weights), its fills are noise: ${m.testModel}`);
  if (m.problem) lines.push(`Problem: ${m.problem}`);
  lines.push("Click to show the log.");
  return { text, tooltip: lines.join("\n"), warning: m.state === "not found" || m.state === "failed" || !!m.testModel };
}

export class StatusBar implements vscode.Disposable {
  readonly item: vscode.StatusBarItem;
  model: StatusModel;

  constructor(initial: Omit<StatusModel, "busy" | "state">) {
    this.item = vscode.window.createStatusBarItem("lacuna.status", vscode.StatusBarAlignment.Right, 100);
    this.item.name = "Lacuna";
    this.item.command = "lacuna.showLog";
    this.model = { ...initial, state: "starting", busy: 0 };
    this.refresh();
    this.item.show();
  }

  update(change: Partial<StatusModel>): void {
    this.model = { ...this.model, ...change };
    this.refresh();
  }

  /** Mark one more piece of work running; the returned function marks it done. */
  begin(): () => void {
    this.update({ busy: this.model.busy + 1 });
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const busy = Math.max(0, this.model.busy - 1);
      this.update({ busy, step: busy === 0 ? undefined : this.model.step });
    };
  }

  private refresh(): void {
    const r = render(this.model);
    this.item.text = r.text;
    this.item.tooltip = r.tooltip;
    this.item.backgroundColor = r.warning ? new vscode.ThemeColor("statusBarItem.warningBackground") : undefined;
  }

  dispose(): void {
    this.item.dispose();
  }
}
