import type { ConfigLike } from "../src/settings";
import type { Timers } from "../src/debounce";

/** A `lacuna` configuration section from a flat object of dotted keys. */
export function config(values: Record<string, unknown>): ConfigLike {
  return { get: <T>(key: string) => values[key] as T | undefined };
}

/** Timers that only move when told to. */
export class FakeTimers implements Timers {
  now = 0;
  private next = 1;
  private readonly queue = new Map<number, { at: number; fn: () => void }>();
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.next++;
    this.queue.set(id, { at: this.now + ms, fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.queue.delete(handle as number);
  }
  get pending(): number {
    return this.queue.size;
  }
  async advance(ms: number): Promise<void> {
    this.now += ms;
    for (const [id, t] of [...this.queue].sort((a, b) => a[1].at - b[1].at)) {
      if (t.at <= this.now) {
        this.queue.delete(id);
        t.fn();
      }
    }
    await new Promise((r) => setImmediate(r));
  }
}

export function tokenSource() {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const vscode = require("vscode");
  return new vscode.CancellationTokenSource();
}
