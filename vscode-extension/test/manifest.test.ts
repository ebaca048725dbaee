import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe as suite, test } from "node:test";

const root = path.join(__dirname, "..");
const manifest = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));
const source = fs.readFileSync(path.join(root, "src", "extension.ts"), "utf8");

suite("extension manifest", () => {
  const commands: { command: string; title: string; category: string }[] = manifest.contributes.commands;
  test("the six commands, titled as the issue names them", () => {
    assert.deepEqual(commands.map((c) => `${c.category}: ${c.title}`), [
      "Lacuna: Fill Selection",
      "Lacuna: Fill [MASK] Markers",
      "Lacuna: Write Function Body",
      "Lacuna: Toggle Inline Suggestions",
      "Lacuna: Restart Server",
      "Lacuna: Show Log",
    ]);
  });
  test("every command has a default keybinding and is registered by the extension", () => {
    const bound = new Set(manifest.contributes.keybindings.map((k: { command: string }) => k.command));
    for (const c of commands) {
      assert.ok(bound.has(c.command), `${c.command} has no keybinding`);
      assert.ok(source.includes(`"${c.command}"`), `${c.command} is not registered in src/extension.ts`);
    }
  });
  test("every lacuna.* setting has a description", () => {
    for (const [key, prop] of Object.entries<{ markdownDescription?: string; description?: string }>(manifest.contributes.configuration.properties)) {
      assert.ok(key.startsWith("lacuna."), key);
      assert.ok(prop.markdownDescription || prop.description, `${key} has no description`);
    }
  });
  test("the bundle is the entry point and the only code packaged", () => {
    assert.equal(manifest.main, "./dist/extension.js");
    const ignore = fs.readFileSync(path.join(root, ".vscodeignore"), "utf8");
    assert.match(ignore, /^!dist\/extension\.js$/m);
  });
});
