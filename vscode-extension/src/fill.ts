/**
 * The fill commands: "Fill Selection" and "Fill [MASK] Markers" through the server's
 * `lacuna/fill` request, "Write Function Body" through its code action and
 * codeAction/resolve. Each runs under a progress notification with a Cancel button (the
 * request is cancelled with $/cancelRequest), shows the server's per-step progress, and,
 * when `lacuna.liveText` is on, the text emerging at each hole step by step (the server's
 * partial results).
 */
import type { ModelInfo } from "./testmodel";
import { randomUUID } from "node:crypto";
import * as vscode from "vscode";
import {
  CodeAction as LspCodeAction,
  CodeActionRequest,
  CodeActionResolveRequest,
  LanguageClient,
  ProgressType,
  ResponseError,
  TextEdit as LspTextEdit,
  WorkDoneProgress,
  WorkDoneProgressBegin,
  WorkDoneProgressEnd,
  WorkDoneProgressReport,
} from "vscode-languageclient/node";
import { findMarkers, oneLine } from "./markers";

export const FILL_METHOD = "lacuna/fill";
export const KIND_BODY = "refactor.rewrite.lacuna.body";

/** LSP error codes the fills answer with. */
export const REQUEST_CANCELLED = -32800;
export const CONTENT_MODIFIED = -32801;

export interface FillResponse {
  edits: LspTextEdit[];
  stats: {
    model?: ModelInfo;
    steps?: number;
    forward_passes?: number;
    [k: string]: unknown;
  };
}

interface PartialFill {
  step: number;
  total: number;
  texts: string[] | null;
}

export interface FillHost {
  client(): LanguageClient | undefined;
  marker(): string;
  liveText(): boolean;
  log: vscode.LogOutputChannel;
  begin(): () => void;
  step(text: string | undefined): void;
  modelInfo(info: FillResponse["stats"]["model"]): void;
}

/** Shows the text emerging at each hole while a fill runs. */
class LiveText implements vscode.Disposable {
  private readonly holeStyle = vscode.window.createTextEditorDecorationType({
    opacity: "0.45",
    textDecoration: "line-through",
  });
  private readonly textStyle = vscode.window.createTextEditorDecorationType({
    after: { color: new vscode.ThemeColor("editorGhostText.foreground"), fontStyle: "italic", margin: "0 0 0 0.3em" },
  });

  constructor(
    private readonly document: vscode.TextDocument,
    private readonly holes: vscode.Range[],
  ) {}

  show(texts: string[]): void {
    const editors = vscode.window.visibleTextEditors.filter((e) => e.document === this.document);
    const after: vscode.DecorationOptions[] = this.holes.map((r, i) => ({
      range: new vscode.Range(r.end, r.end),
      renderOptions: { after: { contentText: `⟨${oneLine(texts[i] ?? "")}⟩` } },
    }));
    for (const e of editors) {
      e.setDecorations(this.holeStyle, this.holes);
      e.setDecorations(this.textStyle, after);
    }
  }

  dispose(): void {
    this.holeStyle.dispose();
    this.textStyle.dispose();
  }
}

function errorCode(e: unknown): number | undefined {
  if (e instanceof ResponseError) return e.code;
  if (e && typeof e === "object" && "code" in e && typeof (e as { code: unknown }).code === "number") {
    return (e as { code: number }).code;
  }
  return undefined;
}

export class Fills {
  constructor(private readonly host: FillHost) {}

  private ready(): { client: LanguageClient; editor: vscode.TextEditor } | undefined {
    const editor = vscode.window.activeTextEditor;
    if (!editor) {
      void vscode.window.showInformationMessage("Lacuna: open a document first.");
      return undefined;
    }
    const client = this.host.client();
    if (!client || !client.isRunning()) {
      void vscode.window
        .showWarningMessage("Lacuna: the language server is not running.", "Restart Server", "Show Log")
        .then((pick) => {
          if (pick === "Restart Server") void vscode.commands.executeCommand("lacuna.restartServer");
          if (pick === "Show Log") void vscode.commands.executeCommand("lacuna.showLog");
        });
      return undefined;
    }
    return { client, editor };
  }

  async fillSelection(): Promise<boolean> {
    const ok = this.ready();
    if (!ok) return false;
    const { editor } = ok;
    const ranges = editor.selections.filter((s) => !s.isEmpty).map((s) => new vscode.Range(s.start, s.end));
    if (ranges.length === 0) {
      void vscode.window.showInformationMessage(
        "Lacuna: select the text to replace first (or put [MASK] markers in the document and run Fill [MASK] Markers).",
      );
      return false;
    }
    return this.fill(ok.client, editor.document, ranges, `Filling ${ranges.length === 1 ? "the selection" : `${ranges.length} selections`}`);
  }

  async fillMarkers(): Promise<boolean> {
    const ok = this.ready();
    if (!ok) return false;
    const doc = ok.editor.document;
    const text = doc.getText();
    const marker = this.host.marker();
    const spans = findMarkers(text, marker);
    if (spans.length === 0) {
      void vscode.window.showInformationMessage(`Lacuna: no ${marker} markers in this document.`);
      return false;
    }
    const holes = spans.map((s) => new vscode.Range(doc.positionAt(s.start), doc.positionAt(s.end)));
    return this.fill(ok.client, doc, holes, `Filling ${spans.length} ${marker} marker${spans.length === 1 ? "" : "s"}`, true);
  }

  /** `lacuna/fill` with progress, cancellation, live text, and a stale-document check. */
  private async fill(
    client: LanguageClient,
    document: vscode.TextDocument,
    holes: vscode.Range[],
    title: string,
    markers = false,
  ): Promise<boolean> {
    const c2p = client.code2ProtocolConverter;
    const version = document.version;
    const workDoneToken = `lacuna-fill-${randomUUID()}`;
    const partialResultToken = this.host.liveText() ? `lacuna-partial-${randomUUID()}` : undefined;
    const done = this.host.begin();
    const live = partialResultToken ? new LiveText(document, holes) : undefined;
    const subs: vscode.Disposable[] = [];
    try {
      return await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Lacuna: ${title}`, cancellable: true },
        async (progress, token) => {
          let last = 0;
          subs.push(
            client.onProgress(WorkDoneProgress.type, workDoneToken, (v: WorkDoneProgressBegin | WorkDoneProgressReport | WorkDoneProgressEnd) => {
              if (v.kind === "end") return;
              const pct = v.percentage ?? last;
              progress.report({ message: v.message, increment: Math.max(0, pct - last) });
              last = Math.max(last, pct);
              if (v.message && v.kind === "report") this.host.step(v.message.split(",")[0]);
            }),
          );
          if (partialResultToken && live) {
            subs.push(
              client.onProgress(new ProgressType<PartialFill>(), partialResultToken, (v) => {
                if (v && Array.isArray(v.texts)) live.show(v.texts);
              }),
            );
          }
          const params = {
            textDocument: c2p.asTextDocumentIdentifier(document),
            version,
            ranges: markers ? [] : holes.map((r) => c2p.asRange(r)),
            workDoneToken,
            partialResultToken,
          };
          let response: FillResponse;
          try {
            response = await client.sendRequest<FillResponse>(FILL_METHOD, params, token);
          } catch (e) {
            return this.failed(e, token);
          }
          this.host.modelInfo(response.stats?.model);
          this.host.log.info(`fill: ${response.edits.length} edit(s), stats ${JSON.stringify(response.stats)}`);
          if (document.version !== version) {
            void vscode.window.showWarningMessage("Lacuna: the document changed while filling; nothing was applied. Run the command again.");
            return false;
          }
          const edit = new vscode.WorkspaceEdit();
          edit.set(document.uri, await client.protocol2CodeConverter.asTextEdits(response.edits) ?? []);
          const applied = await vscode.workspace.applyEdit(edit);
          if (!applied) void vscode.window.showWarningMessage("Lacuna: VS Code did not apply the fill's edits.");
          return applied;
        },
      );
    } finally {
      for (const s of subs) s.dispose();
      live?.dispose();
      done();
    }
  }

  async writeFunctionBody(): Promise<boolean> {
    const ok = this.ready();
    if (!ok) return false;
    const { client, editor } = ok;
    const document = editor.document;
    const c2p = client.code2ProtocolConverter;
    const version = document.version;
    const range = c2p.asRange(editor.selection);
    let actions: (LspCodeAction | unknown)[] | null;
    try {
      actions = await client.sendRequest(CodeActionRequest.type, {
        textDocument: c2p.asTextDocumentIdentifier(document),
        range,
        context: { diagnostics: [], only: [KIND_BODY] },
      });
    } catch (e) {
      return this.failed(e, undefined);
    }
    const action = (actions ?? []).find(
      (a): a is LspCodeAction => !!a && typeof a === "object" && "kind" in a && (a as LspCodeAction).kind === KIND_BODY,
    );
    if (!action) {
      void vscode.window.showInformationMessage("Lacuna: put the cursor inside a function whose body should be written.");
      return false;
    }
    if (action.disabled) {
      void vscode.window.showInformationMessage(`Lacuna: ${action.disabled.reason}`);
      return false;
    }
    const done = this.host.begin();
    try {
      return await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Lacuna: ${action.title}`, cancellable: true },
        async (_progress, token) => {
          let resolved: LspCodeAction;
          try {
            resolved = await client.sendRequest(CodeActionResolveRequest.type, action, token);
          } catch (e) {
            return this.failed(e, token);
          }
          if (!resolved.edit) return false;
          if (document.version !== version) {
            void vscode.window.showWarningMessage("Lacuna: the document changed while writing; nothing was applied. Run the command again.");
            return false;
          }
          const edit = await client.protocol2CodeConverter.asWorkspaceEdit(resolved.edit);
          return vscode.workspace.applyEdit(edit);
        },
      );
    } finally {
      done();
    }
  }

  private failed(e: unknown, token: vscode.CancellationToken | undefined): false {
    const code = errorCode(e);
    if (token?.isCancellationRequested || code === REQUEST_CANCELLED) {
      this.host.log.info("fill cancelled");
      void vscode.window.setStatusBarMessage("Lacuna: fill cancelled", 3000);
    } else if (code === CONTENT_MODIFIED) {
      void vscode.window.showWarningMessage("Lacuna: the document changed while filling; nothing was applied. Run the command again.");
    } else {
      const message = e instanceof Error ? e.message : String(e);
      this.host.log.error(`fill failed: ${message}`);
      void vscode.window.showErrorMessage(`Lacuna: ${message}`, "Show Log").then((pick) => {
        if (pick) this.host.log.show(true);
      });
    }
    return false;
  }
}
