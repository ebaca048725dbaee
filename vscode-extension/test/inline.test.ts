import assert from "node:assert/strict";
import { describe as suite, test } from "node:test";
import type * as vscode from "vscode";
import { Debouncer } from "../src/debounce";
import { inlineMiddleware } from "../src/inline";
import { FakeTimers, tokenSource } from "./helpers";

const doc = {} as vscode.TextDocument;
const pos = {} as vscode.Position;
const auto = { triggerKind: 1 } as unknown as vscode.InlineCompletionContext;
const invoke = { triggerKind: 0 } as unknown as vscode.InlineCompletionContext;
const items = [{ insertText: "x + 1" }] as unknown as vscode.InlineCompletionItem[];

function setup(enabled = true) {
  const timers = new FakeTimers();
  const calls: unknown[] = [];
  let busy = 0;
  const mw = inlineMiddleware(
    { enabled: () => enabled, debounceMs: () => 250, begin: () => (busy++, () => busy--) },
    new Debouncer(timers),
  );
  const next = async () => {
    calls.push(1);
    return items;
  };
  return { timers, calls, mw, next, busy: () => busy };
}

suite("inline suggestions middleware", () => {
  test("off: never asks the server", async () => {
    const s = setup(false);
    assert.equal(await s.mw(doc, pos, auto, tokenSource().token, s.next), null);
    assert.equal(s.calls.length, 0);
  });

  test("asks the server once the debounce delay has passed", async () => {
    const s = setup();
    const p = s.mw(doc, pos, auto, tokenSource().token, s.next);
    await s.timers.advance(100);
    assert.equal(s.calls.length, 0);
    await s.timers.advance(150);
    assert.deepEqual(await p, items);
    assert.equal(s.calls.length, 1);
    assert.equal(s.busy(), 0);
  });

  test("typing on during the delay: no request reaches the server", async () => {
    const s = setup();
    const src = tokenSource();
    const p = s.mw(doc, pos, auto, src.token, s.next);
    await s.timers.advance(100);
    src.cancel();
    await s.timers.advance(500);
    assert.equal(await p, null);
    assert.equal(s.calls.length, 0);
  });

  test("a burst of keystrokes sends only the last request", async () => {
    const s = setup();
    const results = [];
    for (let i = 0; i < 5; i++) {
      results.push(s.mw(doc, pos, auto, tokenSource().token, s.next));
      await s.timers.advance(50);
    }
    await s.timers.advance(250);
    const got = await Promise.all(results);
    assert.deepEqual(got.slice(0, 4), [null, null, null, null]);
    assert.deepEqual(got[4], items);
    assert.equal(s.calls.length, 1);
  });

  test("cancelled while the server works: the stale answer is dropped", async () => {
    const s = setup();
    const src = tokenSource();
    const slow = async () => {
      src.cancel();
      return items;
    };
    const p = s.mw(doc, pos, invoke, src.token, slow);
    await s.timers.advance(0);
    assert.equal(await p, null);
    assert.equal(s.busy(), 0);
  });

  test("an explicit request (Invoke) does not wait for the debounce delay", async () => {
    const s = setup();
    const p = s.mw(doc, pos, invoke, tokenSource().token, s.next);
    await s.timers.advance(0);
    assert.deepEqual(await p, items);
  });
});
