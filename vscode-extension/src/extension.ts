/**
 * Lacuna for VS Code: starts `lacuna serve` through vscode-languageclient and wires the
 * server's features into commands, keybindings, settings, inline suggestions, progress and
 * a status bar item.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
} from "vscode-languageclient/node";
import { describe, findServer, INSTALL_HINT, ServerCommand, ServerNotFound } from "./discovery";
import { Fills } from "./fill";
import { inlineMiddleware } from "./inline";
import { RESTART_KEYS, ServerSettings, toServerSettings } from "./settings";
import { StatusBar } from "./status";
import { readModelConfig, TestModelWarning } from "./testmodel";

export const COMMANDS = {
  fillSelection: "lacuna.fillSelection",
  fillMarkers: "lacuna.fillMarkers",
  writeFunctionBody: "lacuna.writeFunctionBody",
  toggleInline: "lacuna.toggleInlineSuggestions",
  restartServer: "lacuna.restartServer",
  showLog: "lacuna.showLog",
} as const;

function isExecutable(file: string): boolean {
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) return false;
    if (process.platform === "win32") return true;
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export class Lacuna implements vscode.Disposable {
  readonly log: vscode.LogOutputChannel;
  readonly status: StatusBar;
  private client: LanguageClient | undefined;
  private serverCommand: ServerCommand | undefined;
  private sent: ServerSettings | undefined;
  private readonly disposables: vscode.Disposable[] = [];
  readonly fills: Fills;
  private readonly testModel: TestModelWarning;

  constructor(private readonly context: vscode.ExtensionContext) {
    this.log = vscode.window.createOutputChannel("Lacuna", { log: true });
    this.testModel = new TestModelWarning(readModelConfig(fs), this.log);
    const s = this.serverSettings();
    this.status = new StatusBar({ device: s.device, quant: s.quant, inline: this.inlineEnabled() });
    this.fills = new Fills({
      client: () => this.client,
      marker: () => this.serverSettings().marker,
      liveText: () => this.config().get<boolean>("liveText") ?? true,
      log: this.log,
      begin: () => this.status.begin(),
      step: (text) => this.status.update({ step: text }),
      modelInfo: (info) => {
        if (!info) return;
        const testModel = this.testModel.check(this.configuredModel(), info);
        this.status.update({ family: info.family ?? undefined, modelPath: info.path ?? undefined, testModel });
      },
    });
  }

  config(): vscode.WorkspaceConfiguration {
    return vscode.workspace.getConfiguration("lacuna");
  }

  /** The model the server is told to load: the setting, else its LACUNA_MODEL (server.env,
   * then this process's), else undefined (the embedded default). */
  configuredModel(): string | undefined {
    const env = this.config().get<Record<string, string>>("server.env") ?? {};
    return this.serverSettings().model ?? (env.LACUNA_MODEL || process.env.LACUNA_MODEL || undefined);
  }

  /** Before any fill: warn when what is configured is the test model. */
  private checkConfiguredModel(): void {
    this.status.update({ testModel: this.testModel.check(this.configuredModel()) });
  }

  inlineEnabled(): boolean {
    return this.config().get<boolean>("inline.enabled") ?? true;
  }

  serverSettings(): ServerSettings {
    const { settings, problems } = toServerSettings(this.config(), {
      home: os.homedir(),
      workspaceFolder: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath,
    });
    for (const p of problems) this.log.warn(p);
    return settings;
  }

  activate(): void {
    const reg = (id: string, fn: () => unknown) => this.disposables.push(vscode.commands.registerCommand(id, fn));
    reg(COMMANDS.fillSelection, () => this.fills.fillSelection());
    reg(COMMANDS.fillMarkers, () => this.fills.fillMarkers());
    reg(COMMANDS.writeFunctionBody, () => this.fills.writeFunctionBody());
    reg(COMMANDS.toggleInline, () => this.toggleInline());
    reg(COMMANDS.restartServer, () => this.restart());
    reg(COMMANDS.showLog, () => this.log.show(true));
    this.disposables.push(vscode.workspace.onDidChangeConfiguration((e) => this.onConfigChange(e)));
    this.disposables.push(vscode.workspace.onDidChangeWorkspaceFolders(() => {
      if (!this.client) void this.start();
    }));
    void this.start();
  }

  async start(): Promise<void> {
    const cfg = this.config();
    const folders = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === "file").map((f) => f.uri.fsPath);
    try {
      this.serverCommand = findServer({
        command: cfg.get<string | string[]>("server.command"),
        pythonPath: cfg.get<string>("server.pythonPath"),
        args: cfg.get<string[]>("server.args") ?? [],
        workspaceFolders: folders,
        pathEnv: process.env.PATH,
        platform: process.platform,
        isExecutable,
        home: os.homedir(),
      });
    } catch (e) {
      if (!(e instanceof ServerNotFound)) throw e;
      this.log.error(e.message);
      this.log.info(`searched: ${e.searched.join(", ")}`);
      this.status.update({ state: "not found", problem: e.message, command: undefined });
      const pick = await vscode.window.showErrorMessage(e.message, "Copy Install Command", "Open Settings", "Show Log");
      if (pick === "Copy Install Command") await vscode.env.clipboard.writeText(INSTALL_HINT.split("   ")[0]);
      if (pick === "Open Settings") await vscode.commands.executeCommand("workbench.action.openSettings", "lacuna.server");
      if (pick === "Show Log") this.log.show(true);
      return;
    }
    const cmd = this.serverCommand;
    this.log.info(`starting the server (${cmd.source}): ${describe(cmd)}`);
    const env: Record<string, string> = { ...(process.env as Record<string, string>) };
    for (const [k, v] of Object.entries(cfg.get<Record<string, string>>("server.env") ?? {})) env[k] = String(v);
    const serverOptions: ServerOptions = {
      command: cmd.command,
      args: cmd.args,
      // No `transport`: TransportKind.stdio would append `--stdio`, which `lacuna serve`
      // rejects; a plain command already talks LSP on stdio.
      options: { env, cwd: folders[0] },
    };
    const settings = this.serverSettings();
    this.sent = settings;
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: "file" }, { scheme: "untitled" }],
      initializationOptions: settings,
      outputChannel: this.log,
      traceOutputChannel: this.log,
      middleware: {
        provideInlineCompletionItems: inlineMiddleware({
          enabled: () => this.inlineEnabled(),
          debounceMs: () => this.config().get<number>("inline.debounceMs") ?? 300,
          begin: () => this.status.begin(),
        }),
        workspace: {
          // The server asks for section "lacuna" when a change came without settings.
          configuration: (params) =>
            params.items.map((item) => (item.section === "lacuna" ? this.serverSettings() : null)),
        },
      },
    };
    const client = new LanguageClient("lacuna", "Lacuna", serverOptions, clientOptions);
    this.client = client;
    this.status.update({ state: "starting", command: describe(cmd), problem: undefined, device: settings.device, quant: settings.quant });
    client.onDidChangeState((e) => {
      if (this.client !== client) return;
      if (e.newState === State.Running) {
        this.status.update({ state: "ready", problem: undefined });
        this.checkConfiguredModel();
      }
      else if (e.newState === State.Stopped) this.status.update({ state: "stopped" });
    });
    try {
      await client.start();
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      this.log.error(`the server failed to start: ${message}`);
      this.status.update({ state: "failed", problem: message });
      void vscode.window.showErrorMessage(`Lacuna: the language server failed to start (${describe(cmd)}): ${message}`, "Show Log")
        .then((pick) => pick && this.log.show(true));
    }
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client) {
      try {
        await client.stop(5000);
      } catch (e) {
        this.log.warn(`stopping the server: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }

  async restart(): Promise<void> {
    this.log.info("restarting the server");
    await this.stop();
    this.status.update({ family: undefined, modelPath: undefined, testModel: undefined, busy: 0, step: undefined });
    await this.start();
  }

  async toggleInline(): Promise<void> {
    const cfg = this.config();
    const info = cfg.inspect<boolean>("inline.enabled");
    const target =
      info?.workspaceFolderValue !== undefined
        ? vscode.ConfigurationTarget.WorkspaceFolder
        : info?.workspaceValue !== undefined
          ? vscode.ConfigurationTarget.Workspace
          : vscode.ConfigurationTarget.Global;
    const next = !this.inlineEnabled();
    await cfg.update("inline.enabled", next, target);
    this.status.update({ inline: next });
    void vscode.window.setStatusBarMessage(`Lacuna: inline suggestions ${next ? "on" : "off"}`, 3000);
  }

  private onConfigChange(e: vscode.ConfigurationChangeEvent): void {
    if (!e.affectsConfiguration("lacuna")) return;
    this.status.update({ inline: this.inlineEnabled() });
    if (RESTART_KEYS.some((k) => e.affectsConfiguration(`lacuna.${k}`))) {
      this.log.info("a server setting changed: restarting the server");
      void this.restart();
      return;
    }
    const settings = this.serverSettings();
    this.status.update({ device: settings.device, quant: settings.quant });
    if (this.sent && JSON.stringify(this.sent) === JSON.stringify(settings)) return;
    if (this.sent && (this.sent.model !== settings.model || this.sent.device !== settings.device || this.sent.quant !== settings.quant)) {
      this.status.update({ family: undefined, modelPath: undefined }); // reloads on the next fill
      this.checkConfiguredModel();
    }
    this.sent = settings;
    const client = this.client;
    if (client?.isRunning()) {
      this.log.info(`settings changed: ${JSON.stringify(settings)}`);
      void client.sendNotification(DidChangeConfigurationNotification.type, { settings: { lacuna: settings } });
    }
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
    this.status.dispose();
  }
}

let instance: Lacuna | undefined;

export function activate(context: vscode.ExtensionContext): Lacuna {
  instance = new Lacuna(context);
  context.subscriptions.push(instance, instance.log);
  instance.activate();
  return instance;
}

export async function deactivate(): Promise<void> {
  const it = instance;
  instance = undefined;
  if (it) await it.stop();
}
