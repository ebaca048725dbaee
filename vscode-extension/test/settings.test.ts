import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test, describe as suite } from "node:test";
import { changedKeys, DEFAULTS, RESTART_KEYS, SERVER_KEYS, toServerSettings, touchesModel } from "../src/settings";
import { config } from "./helpers";

const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "package.json"), "utf8"));
const props: Record<string, { default?: unknown }> = manifest.contributes.configuration.properties;

suite("settings mapping", () => {
  test("nothing set: the server's defaults, with every key present", () => {
    const { settings, problems } = toServerSettings(config({}));
    assert.deepEqual(settings, DEFAULTS);
    assert.deepEqual(problems, []);
    assert.deepEqual(Object.keys(settings).sort(), SERVER_KEYS.map(([, k]) => k).sort());
  });

  test("every VS Code setting reaches its server key", () => {
    const { settings, problems } = toServerSettings(config({
      modelDirectory: "/models/llada", device: "cuda:1", quantization: "NF4", steps: 12,
      confidenceThreshold: 0.9, temperature: 0.7, seed: 3, blockLength: 8, marker: "<<FILL>>",
      budget: 64, "inline.budget": 8, bodyBudget: 40, contextTokens: 512, syntaxConstraint: false,
      lengthPolicy: "best_of", cache: true, "inline.confidenceThreshold": 0.8, "inline.contextTokens": 64,
      "inline.lengthPolicy": "absorb", "inline.syntaxConstraint": true,
    }));
    assert.deepEqual(problems, []);
    assert.deepEqual(settings, {
      model: "/models/llada", device: "cuda:1", quant: "nf4", steps: 12, threshold: 0.9, temperature: 0.7,
      seed: 3, blockLength: 8, marker: "<<FILL>>", budget: 64, inlineBudget: 8, bodyBudget: 40, contextTokens: 512,
      syntaxConstraint: false, lengthPolicy: "best_of", cache: true, inlineThreshold: 0.8, inlineContext: 64,
      inlineLengthPolicy: "absorb", inlineSyntaxConstraint: true,
    });
  });

  test("cleared settings are sent as null so a running server forgets them", () => {
    const { settings } = toServerSettings(config({ modelDirectory: "  ", steps: null, confidenceThreshold: null, blockLength: 0 }));
    assert.equal(settings.model, null);
    assert.equal(settings.steps, null);
    assert.equal(settings.threshold, null);
    assert.equal(settings.blockLength, null);
    assert.ok("model" in settings && "threshold" in settings);
  });

  test("context windows: 0 means no context, empty means all", () => {
    assert.equal(toServerSettings(config({ contextTokens: 0 })).settings.contextTokens, 0);
    assert.equal(toServerSettings(config({ contextTokens: null })).settings.contextTokens, null);
    assert.equal(toServerSettings(config({ "inline.contextTokens": null })).settings.inlineContext, null);
    assert.equal(toServerSettings(config({})).settings.inlineContext, 256);
  });

  test("the inline threshold can be cleared (steps instead) but keeps its default otherwise", () => {
    assert.equal(toServerSettings(config({})).settings.inlineThreshold, 0.9);
    assert.equal(toServerSettings(config({ "inline.confidenceThreshold": null })).settings.inlineThreshold, null);
    assert.equal(toServerSettings(config({ "inline.confidenceThreshold": 0 })).settings.inlineThreshold, null);
  });

  test("bad values fall back to the default and are reported, one line each", () => {
    const { settings, problems } = toServerSettings(config({
      quantization: "fp4", lengthPolicy: "longest", cache: "yes", steps: -2, confidenceThreshold: 1.5, temperature: -1, seed: 1.5, marker: "", budget: 0,
      "inline.lengthPolicy": "shortest",
    }));
    assert.equal(settings.quant, "auto");
    assert.equal(settings.steps, null);
    assert.equal(settings.threshold, 0.9);
    assert.equal(settings.temperature, 0);
    assert.equal(settings.seed, 0);
    assert.equal(settings.marker, "[MASK]");
    assert.equal(settings.budget, 32);
    assert.equal(settings.lengthPolicy, "auto");
    assert.equal(settings.inlineLengthPolicy, "auto");
    assert.equal(settings.cache, true);
    assert.equal(problems.length, 10);
    assert.ok(problems.every((p) => p.startsWith("lacuna.")));
    assert.match(problems.join("\n"), /lacuna\.quantization: must be one of none, int8, nf4, torch-int8, auto, got "fp4"/);
  });

  test("~ and ${workspaceFolder} expand in the model directory", () => {
    const env = { home: "/home/u", workspaceFolder: "/ws" };
    assert.equal(toServerSettings(config({ modelDirectory: "~/models/dream" }), env).settings.model, "/home/u/models/dream");
    assert.equal(toServerSettings(config({ modelDirectory: "${workspaceFolder}/m" }), env).settings.model, "/ws/m");
  });

  test("changedKeys and touchesModel decide what the status bar resets", () => {
    const a = toServerSettings(config({})).settings;
    const b = toServerSettings(config({ device: "cpu", steps: 4 })).settings;
    assert.deepEqual(changedKeys(a, b).sort(), ["device", "steps"]);
    assert.equal(touchesModel(changedKeys(a, b)), true);
    assert.equal(touchesModel(["steps", "marker"]), false);
  });

  test("package.json contributes every mapped setting, with the server's defaults", () => {
    for (const [key, target] of SERVER_KEYS) {
      const prop = props[`lacuna.${key}`];
      assert.ok(prop, `package.json lacks lacuna.${key}`);
      assert.deepEqual(prop.default ?? null, DEFAULTS[target] ?? null, `default of lacuna.${key}`);
    }
    for (const key of RESTART_KEYS) assert.ok(props[`lacuna.${key}`], `package.json lacks lacuna.${key}`);
  });

  test("the mapped keys are the ones docs/editors.md's generated settings table lists", (t) => {
    const file = path.join(__dirname, "..", "..", "docs", "editors.md");
    if (!fs.existsSync(file)) return t.skip("docs/editors.md is not next to the extension");
    const table = fs.readFileSync(file, "utf8").split("<!-- settings:begin -->")[1]?.split("<!-- settings:end -->")[0] ?? "";
    const documented = [...table.matchAll(/^\| `(\w+)` \| `([\w.]+)` \|/gm)].map((m) => `${m[2]} -> ${m[1]}`);
    const ours = SERVER_KEYS.map(([setting, key]) => `${setting} -> ${key}`);
    assert.deepEqual(documented.sort(), [...ours].sort());
  });
});
