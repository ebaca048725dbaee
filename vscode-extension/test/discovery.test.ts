import assert from "node:assert/strict";
import { describe as suite, test } from "node:test";
import { describe, DiscoveryInput, findServer, INSTALL_HINT, ServerNotFound, splitCommandLine, which } from "../src/discovery";

function input(files: string[], over: Partial<DiscoveryInput> = {}): DiscoveryInput {
  const set = new Set(files);
  return {
    workspaceFolders: ["/ws"],
    pathEnv: "/usr/local/bin:/usr/bin",
    platform: "linux",
    isExecutable: (f) => set.has(f),
    home: "/home/u",
    ...over,
  };
}

suite("server discovery", () => {
  test("the configured command wins over everything", () => {
    const got = findServer(input(["/opt/l/bin/lacuna", "/ws/.venv/bin/lacuna", "/usr/bin/lacuna"], {
      command: ["/opt/l/bin/lacuna", "serve", "--device", "cpu"],
    }));
    assert.deepEqual(got, { command: "/opt/l/bin/lacuna", args: ["serve", "--device", "cpu"], source: "setting" });
  });

  test("a command given as a string is split, honouring quotes, and looked up on PATH", () => {
    const got = findServer(input(["/usr/bin/lacuna"], { command: `lacuna serve --model "/my models/llada"` }));
    assert.equal(got.command, "/usr/bin/lacuna");
    assert.deepEqual(got.args, ["serve", "--model", "/my models/llada"]);
  });

  test("${workspaceFolder} and ~ expand in the command", () => {
    const got = findServer(input(["/ws/tools/lacuna"], { command: ["${workspaceFolder}/tools/lacuna", "serve", "--model", "~/m"] }));
    assert.equal(got.command, "/ws/tools/lacuna");
    assert.deepEqual(got.args, ["serve", "--model", "/home/u/m"]); // no shell expands ~ for us
    const home = findServer(input(["/home/u/bin/lacuna"], { command: "~/bin/lacuna serve" }));
    assert.equal(home.command, "/home/u/bin/lacuna");
  });

  test("a configured command that does not exist is an error naming the setting, not a silent fallback", () => {
    assert.throws(
      () => findServer(input(["/usr/bin/lacuna"], { command: "/nope/lacuna serve" })),
      (e: unknown) => e instanceof ServerNotFound && /lacuna\.server\.command/.test(e.message) && /\/nope\/lacuna/.test(e.message),
    );
  });

  test("pythonPath runs the server as a module", () => {
    const got = findServer(input(["/ws/.venv/bin/python", "/usr/bin/lacuna"], { pythonPath: "/ws/.venv/bin/python", args: ["--device", "cpu"] }));
    assert.deepEqual(got, { command: "/ws/.venv/bin/python", args: ["-m", "lsp_server", "--device", "cpu"], source: "pythonPath" });
    assert.throws(() => findServer(input([], { pythonPath: "/missing/python" })), /lacuna\.server\.pythonPath/);
  });

  test("the workspace's virtual environment comes before PATH", () => {
    const got = findServer(input(["/ws/.venv/bin/lacuna", "/usr/bin/lacuna"]));
    assert.deepEqual(got, { command: "/ws/.venv/bin/lacuna", args: ["serve"], source: "workspace venv" });
  });

  test("venv folders are tried in order, across workspace folders", () => {
    const got = findServer(input(["/b/venv/bin/lacuna", "/a/env/bin/lacuna"], { workspaceFolders: ["/a", "/b"] }));
    assert.equal(got.command, "/a/env/bin/lacuna");
    const got2 = findServer(input(["/b/venv/bin/lacuna"], { workspaceFolders: ["/a", "/b"] }));
    assert.equal(got2.command, "/b/venv/bin/lacuna");
  });

  test("PATH is the last resort, searched in order", () => {
    const got = findServer(input(["/usr/bin/lacuna", "/usr/local/bin/lacuna"]));
    assert.deepEqual(got, { command: "/usr/local/bin/lacuna", args: ["serve"], source: "PATH" });
  });

  test("Windows: Scripts\\lacuna.exe and PATH with ;", () => {
    const got = findServer(input(["C:\\ws\\.venv\\Scripts\\lacuna.exe"], { platform: "win32", workspaceFolders: ["C:\\ws"], pathEnv: "" }));
    assert.equal(got.command, "C:\\ws\\.venv\\Scripts\\lacuna.exe");
    const onPath = which("lacuna", input(["C:\\py\\lacuna.exe"], { platform: "win32", pathEnv: "C:\\x;C:\\py" }));
    assert.equal(onPath, "C:\\py\\lacuna.exe");
  });

  test("nothing found: a clear message with the install command and what was searched", () => {
    try {
      findServer(input([]));
      assert.fail("expected ServerNotFound");
    } catch (e) {
      assert.ok(e instanceof ServerNotFound);
      assert.ok(e.message.includes(INSTALL_HINT));
      assert.ok(e.message.includes("lacuna.server.command"));
      assert.ok(e.searched.includes("/ws/.venv/bin/lacuna"));
      assert.ok(e.searched.includes("lacuna on PATH"));
    }
  });

  test("no workspace folder: only PATH", () => {
    const got = findServer(input(["/usr/bin/lacuna"], { workspaceFolders: [] }));
    assert.equal(got.source, "PATH");
  });

  test("splitCommandLine and describe", () => {
    assert.deepEqual(splitCommandLine(`a  'b c' "d'e" ""`), ["a", "b c", "d'e", ""]);
    assert.throws(() => splitCommandLine(`a "b`), /unterminated/);
    assert.equal(describe({ command: "/x/lacuna", args: ["serve", "--model", "/a b"], source: "PATH" }), `/x/lacuna serve --model "/a b"`);
  });
});
