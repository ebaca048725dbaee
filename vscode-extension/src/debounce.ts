/**
 * Debouncing for inline suggestions: wait until the user pauses, and give up as soon as
 * they type on. VS Code cancels the token of a pending inline-completion request when the
 * document changes, so "typing on" arrives as a cancellation; a newer request also
 * supersedes an older one. No `vscode` import: the tokens are structural.
 */

export interface CancellationTokenLike {
  readonly isCancellationRequested: boolean;
  onCancellationRequested(listener: () => unknown): { dispose(): unknown };
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/**
 * Resolves `true` after `ms` if the token was not cancelled meanwhile and no newer call
 * was made; resolves `false` at once when either happens. Never rejects.
 */
export class Debouncer {
  private generation = 0;
  private pending: { handle: unknown; resolve: (ok: boolean) => void } | undefined;

  constructor(private readonly timers: Timers = realTimers) {}

  wait(ms: number, token?: CancellationTokenLike): Promise<boolean> {
    this.supersede();
    const gen = ++this.generation;
    if (token?.isCancellationRequested) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      let sub: { dispose(): unknown } | undefined;
      const finish = (ok: boolean) => {
        if (this.pending && this.pending.resolve === settle) this.pending = undefined;
        sub?.dispose();
        resolve(ok && gen === this.generation && !token?.isCancellationRequested);
      };
      let done = false;
      const settle = (ok: boolean) => {
        if (done) return;
        done = true;
        finish(ok);
      };
      const handle = this.timers.setTimeout(() => settle(true), Math.max(0, ms));
      this.pending = { handle, resolve: settle };
      sub = token?.onCancellationRequested(() => {
        this.timers.clearTimeout(handle);
        settle(false);
      });
    });
  }

  /** Abandon the pending wait, if any (it resolves `false`). */
  supersede(): void {
    const p = this.pending;
    if (p) {
      this.pending = undefined;
      this.timers.clearTimeout(p.handle);
      p.resolve(false);
    }
  }
}
