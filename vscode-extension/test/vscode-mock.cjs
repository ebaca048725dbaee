// The parts of the `vscode` API the unit-tested modules touch, recording what they do.
class Position {
  constructor(line, character) {
    this.line = line;
    this.character = character;
  }
}
class Range {
  constructor(start, end) {
    this.start = start;
    this.end = end;
  }
  get isEmpty() {
    return this.start.line === this.end.line && this.start.character === this.end.character;
  }
}
class ThemeColor {
  constructor(id) {
    this.id = id;
  }
}
class CancellationTokenSource {
  constructor() {
    const listeners = new Set();
    this._listeners = listeners;
    this.token = {
      isCancellationRequested: false,
      onCancellationRequested(fn) {
        listeners.add(fn);
        return { dispose: () => listeners.delete(fn) };
      },
    };
  }
  cancel() {
    if (this.token.isCancellationRequested) return;
    this.token.isCancellationRequested = true;
    for (const fn of [...this._listeners]) fn();
  }
  dispose() {}
}

const created = { statusBarItems: [], outputChannels: [], messages: [] };
const window = {
  createStatusBarItem(id, alignment, priority) {
    const item = { id, alignment, priority, text: "", tooltip: "", shown: false, disposed: false,
      show() { this.shown = true; }, hide() { this.shown = false; }, dispose() { this.disposed = true; } };
    created.statusBarItems.push(item);
    return item;
  },
  showWarningMessage(message, ...items) {
    created.messages.push(["warning", message, items]);
    return Promise.resolve(undefined);
  },
  createOutputChannel(name) {
    const lines = [];
    const ch = { name, lines, info: (m) => lines.push(["info", m]), warn: (m) => lines.push(["warn", m]),
      error: (m) => lines.push(["error", m]), show() {}, dispose() {} };
    created.outputChannels.push(ch);
    return ch;
  },
};

module.exports = {
  Position,
  Range,
  ThemeColor,
  CancellationTokenSource,
  StatusBarAlignment: { Left: 1, Right: 2 },
  InlineCompletionTriggerKind: { Invoke: 0, Automatic: 1 },
  ConfigurationTarget: { Global: 1, Workspace: 2, WorkspaceFolder: 3 },
  window,
  __created: created,
};
