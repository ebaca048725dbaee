/**
 * The client side against the real Lacuna server, over vscode-languageclient's own
 * protocol layer (vscode-languageserver-protocol): the messages the extension sends, built
 * by the extension's own code (settings mapping, marker finder), answered by `lacuna serve`
 * on a tiny model. Skips when the repository's .venv (or $LACUNA_SERVER) is missing.
 */
import assert from "node:assert/strict";
import { ChildProcess, spawn } from "node:child_process";
import { after, before, describe as suite, test } from "node:test";
import {
  CancellationTokenSource,
  CodeAction,
  CodeActionRequest,
  CodeActionResolveRequest,
  createProtocolConnection,
  DidChangeConfigurationNotification,
  DidChangeTextDocumentNotification,
  DidOpenTextDocumentNotification,
  InitializeRequest,
  InitializedNotification,
  InlineCompletionRequest,
  ProtocolConnection,
  ResponseError,
  ShowMessageNotification,
  StreamMessageReader,
  StreamMessageWriter,
  TextEdit,
  WorkDoneProgressCreateRequest,
} from "vscode-languageserver-protocol/node";
import { TextDocument } from "vscode-languageserver-textdocument";
import { findMarkers } from "../src/markers";
import { toServerSettings } from "../src/settings";
import { lacunaCommand, modelDir, SAMPLE } from "./server";

const lacuna = lacunaCommand();
const URI = "file:///tmp/lacuna-e2e/sample.py";

const BASE = { device: "cpu", seed: 1, budget: 8, bodyBudget: 16, "inline.budget": 4 };

function config(values: Record<string, unknown>) {
  return { get: <T>(k: string) => values[k] as T | undefined };
}

suite("the extension's requests against the real server", { skip: lacuna ? false : "no .venv/bin/lacuna (run bash scripts/setup.sh) and no $LACUNA_SERVER" }, () => {
  let proc: ChildProcess;
  let conn: ProtocolConnection;
  const messages: string[] = [];
  const progress = new Map<string | number, unknown[]>();
  let version = 1;
  let doc = TextDocument.create(URI, "python", version, SAMPLE);

  const apply = (edits: TextEdit[]) => TextDocument.applyEdits(doc, edits);
  const open = (text: string) => {
    version += 1;
    doc = TextDocument.create(URI, "python", version, text);
    void conn.sendNotification(DidChangeTextDocumentNotification.type, {
      textDocument: { uri: URI, version },
      contentChanges: [{ text }],
    });
  };

  before(async () => {
    const model = modelDir();
    proc = spawn(lacuna!, ["serve"], { env: { ...process.env, LACUNA_MODEL: model }, stdio: ["pipe", "pipe", "inherit"] });
    conn = createProtocolConnection(new StreamMessageReader(proc.stdout!), new StreamMessageWriter(proc.stdin!));
    conn.onNotification(ShowMessageNotification.type, (m) => messages.push(m.message));
    conn.onRequest(WorkDoneProgressCreateRequest.type, () => null);
    conn.onNotification("$/progress", (p: { token: string | number; value: unknown }) => {
      progress.set(p.token, [...(progress.get(p.token) ?? []), p.value]);
    });
    conn.listen();
    // Exactly what the extension sends at start: its mapped settings as initializationOptions.
    // Small budgets keep the tiny model's fills short on a busy 2-core machine.
    const { settings } = toServerSettings(config(BASE));
    const init = await conn.sendRequest(InitializeRequest.type, {
      processId: process.pid,
      rootUri: null,
      capabilities: {
        window: { workDoneProgress: true },
        workspace: { workspaceEdit: { documentChanges: true }, configuration: true },
      },
      initializationOptions: settings,
    });
    assert.ok(init.capabilities.codeActionProvider, "the server offers code actions");
    assert.ok(init.capabilities.inlineCompletionProvider, "the server offers inline completion");
    await conn.sendNotification(InitializedNotification.type, {});
    await conn.sendNotification(DidOpenTextDocumentNotification.type, {
      textDocument: { uri: URI, languageId: "python", version, text: SAMPLE },
    });
  });

  after(async () => {
    if (!conn) return;
    try {
      await conn.sendRequest("shutdown");
      await conn.sendNotification("exit");
    } catch {
      /* the server may already be gone */
    }
    conn.dispose();
    proc.kill();
  });

  test("the extension's settings are accepted without a warning", () => {
    assert.deepEqual(messages.filter((m) => /ignored/.test(m)), []);
  });

  test("Fill [MASK] Markers: lacuna/fill with progress and partial results, edits only inside the markers", async () => {
    const holes = findMarkers(doc.getText(), "[MASK]");
    assert.equal(holes.length, 2);
    const res = await conn.sendRequest<{ edits: TextEdit[]; stats: Record<string, unknown> }>("lacuna/fill", {
      textDocument: { uri: URI },
      version,
      ranges: [],
      workDoneToken: "w1",
      partialResultToken: "p1",
    });
    assert.equal(res.edits.length, 2);
    const text = apply(res.edits);
    assert.ok(!text.includes("[MASK"), text);
    // Everything outside the holes is untouched.
    const before0 = SAMPLE.slice(0, holes[0].start);
    const between = SAMPLE.slice(holes[0].end, holes[1].start);
    const after1 = SAMPLE.slice(holes[1].end);
    assert.ok(text.startsWith(before0) && text.endsWith(after1) && text.includes(between));
    const model = res.stats.model as { family?: string };
    assert.ok(model && typeof model === "object", "stats.model feeds the status bar");
    const work = progress.get("w1") ?? [];
    assert.equal((work[0] as { kind: string }).kind, "begin");
    assert.equal((work.at(-1) as { kind: string }).kind, "end");
    assert.ok(work.some((v) => (v as { kind: string }).kind === "report"));
    const partial = (progress.get("p1") ?? []) as { step: number; total: number; texts: string[] }[];
    assert.ok(partial.length > 0, "live text: partial results arrive step by step");
    assert.equal(partial[0].texts.length, 2);
  });

  test("Fill Selection: a range becomes one edit over exactly that range", async () => {
    const text = doc.getText();
    const start = text.indexOf("[MASK:6]");
    const range = { start: doc.positionAt(start), end: doc.positionAt(start + "[MASK:6]".length) };
    const res = await conn.sendRequest<{ edits: TextEdit[] }>("lacuna/fill", { textDocument: { uri: URI }, version, ranges: [range] });
    assert.equal(res.edits.length, 1);
    assert.deepEqual(res.edits[0].range, range);
  });

  test("Write Function Body: the code action, resolved, edits the body", async () => {
    open("def add(a: int, b: int) -> int:\n    pass\n");
    const actions = (await conn.sendRequest(CodeActionRequest.type, {
      textDocument: { uri: URI },
      range: { start: { line: 1, character: 4 }, end: { line: 1, character: 4 } },
      context: { diagnostics: [], only: ["refactor.rewrite.lacuna.body"] },
    })) as CodeAction[];
    const body = actions.find((a) => a.kind === "refactor.rewrite.lacuna.body");
    assert.ok(body, `no body action in ${JSON.stringify(actions)}`);
    const resolved = await conn.sendRequest(CodeActionResolveRequest.type, body);
    const change = resolved.edit?.documentChanges?.[0] as { textDocument: { version: number }; edits: TextEdit[] };
    assert.equal(change.textDocument.version, version);
    const text = apply(change.edits);
    assert.ok(text.startsWith("def add(a: int, b: int) -> int:\n"), text);
  });

  test("a settings change reaches the running server: a new marker is used at once", async () => {
    open("x = <<FILL>>\ny = [MASK]\n");
    const { settings } = toServerSettings(config({ ...BASE, marker: "<<FILL>>" }));
    await conn.sendNotification(DidChangeConfigurationNotification.type, { settings: { lacuna: settings } });
    const res = await conn.sendRequest<{ edits: TextEdit[] }>("lacuna/fill", { textDocument: { uri: URI }, version });
    assert.equal(res.edits.length, 1);
    assert.equal(res.edits[0].range.start.line, 0);
    const back = toServerSettings(config(BASE)).settings;
    await conn.sendNotification(DidChangeConfigurationNotification.type, { settings: { lacuna: back } });
    assert.deepEqual(messages.filter((m) => /ignored/.test(m)), []);
  });

  test("inline suggestion at the cursor: an InlineCompletionList", async () => {
    open("def square(x):\n    return ");
    const res = await conn.sendRequest(InlineCompletionRequest.type, {
      textDocument: { uri: URI },
      position: { line: 1, character: 11 },
      context: { triggerKind: 2 },
    });
    assert.ok(res && "items" in res && Array.isArray(res.items), JSON.stringify(res));
  });

  test("Cancel: $/cancelRequest stops a long fill with RequestCancelled; the server keeps serving", async () => {
    open("x = [MASK:400]\n");
    const source = new CancellationTokenSource();
    conn.onNotification("$/progress", (p: { token: string }) => {
      if (p.token === "w-cancel") source.cancel();
    });
    await assert.rejects(
      conn.sendRequest("lacuna/fill", { textDocument: { uri: URI }, version, workDoneToken: "w-cancel" }, source.token),
      (e: unknown) => e instanceof ResponseError && e.code === -32800,
    );
    open("x = [MASK:2]\n");
    const res = await conn.sendRequest<{ edits: TextEdit[] }>("lacuna/fill", { textDocument: { uri: URI }, version });
    assert.equal(res.edits.length, 1);
  });

  test("a stale version answers ContentModified and no edits", async () => {
    await assert.rejects(
      conn.sendRequest("lacuna/fill", { textDocument: { uri: URI }, version: version - 1 }),
      (e: unknown) => e instanceof ResponseError && e.code === -32801,
    );
  });
});
