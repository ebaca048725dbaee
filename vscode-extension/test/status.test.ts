import assert from "node:assert/strict";
import { describe as suite, test } from "node:test";
import { render, StatusBar, StatusModel } from "../src/status";

const base: StatusModel = { state: "ready", device: "cpu", quant: "none", inline: true, busy: 0 };

suite("status bar", () => {
  test("idle: model family, device, quantization", () => {
    assert.equal(render({ ...base, family: "llada" }).text, "$(sparkle) Lacuna: llada · cpu");
    assert.equal(render({ ...base, family: "dream", device: "cuda", quant: "nf4" }).text, "$(sparkle) Lacuna: dream · cuda · nf4");
    assert.equal(render(base).text, "$(sparkle) Lacuna: model not loaded · cpu");
  });

  test("busy shows a spinner and the step", () => {
    const r = render({ ...base, family: "llada", busy: 1, step: "step 3/12" });
    assert.equal(r.text, "$(loading~spin) Lacuna: step 3/12 · llada · cpu");
    assert.match(r.tooltip, /busy: 1/);
  });

  test("inline suggestions off is visible", () => {
    assert.match(render({ ...base, inline: false }).text, /\$\(circle-slash\)$/);
    assert.match(render({ ...base, inline: false }).tooltip, /Inline suggestions: off/);
  });

  test("server problems are warnings with the reason in the tooltip", () => {
    const r = render({ ...base, state: "not found", problem: "install it" });
    assert.equal(r.text, "$(error) Lacuna: server not found");
    assert.equal(r.warning, true);
    assert.match(r.tooltip, /Problem: install it/);
  });

  test("StatusBar counts overlapping work and clears the step when idle", () => {
    const bar = new StatusBar({ device: "cpu", quant: "none", inline: true });
    bar.update({ state: "ready", family: "llada" });
    const a = bar.begin();
    const b = bar.begin();
    bar.update({ step: "step 1/4" });
    assert.match(bar.item.text, /loading~spin/);
    a();
    a(); // idempotent
    assert.equal(bar.model.busy, 1);
    b();
    assert.equal(bar.model.busy, 0);
    assert.equal(bar.model.step, undefined);
    assert.equal(bar.item.text, "$(sparkle) Lacuna: llada · cpu");
    assert.equal(bar.item.command, "lacuna.showLog");
  });
});
