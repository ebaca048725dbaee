import assert from "node:assert/strict";
import { describe as suite, test } from "node:test";
import { Debouncer } from "../src/debounce";
import { FakeTimers, tokenSource } from "./helpers";

suite("debounce", () => {
  test("resolves true once the user has paused for the whole delay", async () => {
    const timers = new FakeTimers();
    const d = new Debouncer(timers);
    let got: boolean | undefined;
    void d.wait(300, tokenSource().token).then((v) => (got = v));
    await timers.advance(299);
    assert.equal(got, undefined);
    await timers.advance(1);
    assert.equal(got, true);
  });

  test("typing on (the token is cancelled) resolves false at once and clears the timer", async () => {
    const timers = new FakeTimers();
    const d = new Debouncer(timers);
    const src = tokenSource();
    const p = d.wait(300, src.token);
    await timers.advance(100);
    src.cancel();
    assert.equal(await p, false);
    assert.equal(timers.pending, 0);
  });

  test("a newer request supersedes the older one", async () => {
    const timers = new FakeTimers();
    const d = new Debouncer(timers);
    const first = d.wait(300, tokenSource().token);
    await timers.advance(200);
    const second = d.wait(300, tokenSource().token);
    assert.equal(await first, false);
    await timers.advance(299);
    assert.equal(timers.pending, 1);
    await timers.advance(1);
    assert.equal(await second, true);
  });

  test("an already cancelled token never starts a timer", async () => {
    const timers = new FakeTimers();
    const src = tokenSource();
    src.cancel();
    assert.equal(await new Debouncer(timers).wait(300, src.token), false);
    assert.equal(timers.pending, 0);
  });

  test("real timers: a zero delay still yields and resolves true", async () => {
    assert.equal(await new Debouncer().wait(0, tokenSource().token), true);
  });
});
