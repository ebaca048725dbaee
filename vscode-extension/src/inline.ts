/**
 * Inline suggestions (ghost text) through the server's textDocument/inlineCompletion:
 * a vscode-languageclient middleware that drops requests while suggestions are off, waits
 * for the user to pause (debounce), and gives up when they type on (VS Code cancels the
 * request's token; vscode-languageclient then sends $/cancelRequest to the server).
 */
import type * as vscode from "vscode";
import { Debouncer } from "./debounce";

export interface InlineOptions {
  enabled(): boolean;
  debounceMs(): number;
  /** Called around each request that reaches the server (for the status bar). */
  begin?(): () => void;
}

type Next = (
  document: vscode.TextDocument,
  position: vscode.Position,
  context: vscode.InlineCompletionContext,
  token: vscode.CancellationToken,
) => vscode.ProviderResult<vscode.InlineCompletionItem[] | vscode.InlineCompletionList>;

/** The InlineCompletionTriggerKind value for an explicit request (Alt+\ in VS Code). */
const INVOKE = 0;

export function inlineMiddleware(opts: InlineOptions, debouncer = new Debouncer()) {
  return async function provideInlineCompletionItems(
    document: vscode.TextDocument,
    position: vscode.Position,
    context: vscode.InlineCompletionContext,
    token: vscode.CancellationToken,
    next: Next,
  ): Promise<vscode.InlineCompletionItem[] | vscode.InlineCompletionList | null | undefined> {
    if (!opts.enabled()) return null;
    // An explicit request (Trigger Inline Suggestion) is answered at once.
    const wait = (context.triggerKind as number) === INVOKE ? 0 : opts.debounceMs();
    if (!(await debouncer.wait(wait, token))) return null;
    const done = opts.begin?.();
    try {
      const result = await next(document, position, context, token);
      return token.isCancellationRequested ? null : result;
    } finally {
      done?.();
    }
  };
}
