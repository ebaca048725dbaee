import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe as suite, test } from "node:test";
import { render } from "../src/status";
import { readModelConfig, testModelReason, TestModelWarning, WARNING } from "../src/testmodel";

// What the server sends today: `stats.model` of a lacuna/fill response is the worker's
// model_info ({path, family, quant, note?}) plus `loads`; `note` is set when the model was
// named "tiny" (infill.models.default.TINY_NOTE), and the tiny checkpoint's config.json
// carries `lacuna.note` (infill/models/embedded/tiny.py) however it is named.
const TINY_NOTE = "using the tiny test model (random weights, for tests): its fills show the machinery, " +
  "not meaningful text; name no model for the embedded default";
const TINY_CONFIG = JSON.stringify({ model_type: "llama", lacuna: { mask_token_id: 1, note: "tiny test model: random weights unless trained on the toy corpus" } });
const REAL_CONFIG = JSON.stringify({ model_type: "llama", lacuna: { mask_token_id: 49152 } });
const configs: Record<string, string> = { "/m/tiny-dir": TINY_CONFIG, "/m/smollm2": REAL_CONFIG };
const read = (dir: string) => configs[dir];

suite("the tiny test model is never used silently", () => {
  test("named tiny, reported with the server's note, or a directory whose config says so", () => {
    assert.match(testModelReason("tiny", read)!, /random weights/);
    assert.match(testModelReason("/m/tiny-dir", read)!, /tiny test model/);
    assert.equal(testModelReason({ family: "lacuna", path: "/c/lacuna/tiny-v1", note: TINY_NOTE }, read), TINY_NOTE);
    assert.match(testModelReason({ family: "lacuna", path: "/m/tiny-dir" }, read)!, /tiny test model/);
    assert.equal(testModelReason({ test: true, warning: "random" }, read), "random");
  });

  test("the embedded default and real models give no warning", () => {
    for (const m of [undefined, null, "", "default", "/m/smollm2", "/m/missing",
      { family: "lacuna", path: "/m/smollm2" }, { family: "llada", path: "/m/missing" }, {}]) {
      assert.equal(testModelReason(m, read), undefined, JSON.stringify(m));
    }
    assert.equal(testModelReason("/m/broken", () => "{not json"), undefined);
  });

  test("one warning per model, through vscode.window.showWarningMessage", async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const vscode = require("vscode");
    const messages: unknown[][] = vscode.__created.messages;
    messages.length = 0;
    const logged: string[] = [];
    const w = new TestModelWarning(read, { warn: (m) => logged.push(m) });
    assert.equal(w.check(undefined), undefined); // the embedded default: nothing
    assert.equal(w.check(undefined, { family: "lacuna", path: "/m/smollm2" }), undefined);
    assert.equal(messages.length, 0);

    assert.ok(w.check("tiny")); // configured: warns when the server starts
    assert.ok(w.check("tiny", { family: "lacuna", path: "/c/lacuna/tiny-v1", note: TINY_NOTE })); // the fill's report
    assert.ok(w.check("tiny"));
    assert.equal(messages.length, 1);
    const [kind, text, items] = messages[0] as [string, string, string[]];
    assert.equal(kind, "warning");
    assert.ok(text.startsWith(WARNING));
    assert.deepEqual(items, ["Open Settings"]);
    assert.equal(logged.length, 1);

    // The server reports the test model though nothing configured named it (a directory).
    assert.ok(w.check(undefined, { family: "lacuna", path: "/m/tiny-dir" }));
    assert.equal(messages.length, 2);
  });

  test("the status bar shows it as a warning", () => {
    const base = { state: "ready" as const, device: "cpu", quant: "none", inline: true, busy: 0, family: "lacuna" };
    const r = render({ ...base, testModel: TINY_NOTE });
    assert.equal(r.text, "$(warning) Lacuna: lacuna (test model) · cpu");
    assert.equal(r.warning, true);
    assert.match(r.tooltip, /random weights/);
    assert.equal(render(base).warning, false);
  });

  test("readModelConfig reads DIR/config.json and tolerates a missing one", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lacuna-testmodel-"));
    try {
      fs.writeFileSync(path.join(dir, "config.json"), TINY_CONFIG);
      const r = readModelConfig(fs);
      assert.equal(r(dir), TINY_CONFIG);
      assert.equal(r(path.join(dir, "nope")), undefined);
      assert.ok(testModelReason(dir, r));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
