// Preloaded by `npm test` (node --require): `require("vscode")` resolves to the mock.
const Module = require("node:module");
const path = require("node:path");
const mock = path.join(__dirname, "vscode-mock.cjs");
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (request === "vscode") return mock;
  return resolve.call(this, request, ...rest);
};
