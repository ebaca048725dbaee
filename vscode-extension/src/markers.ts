/**
 * Where the [MASK] markers of a text are (to count them before asking the server, and to
 * show the emerging text at each hole while a fill runs). Mirrors infill/holes.py: `MARKER`,
 * or `MARKER` with `:N` before its closing brackets (`[MASK:12]`, `<<FILL:5>>`).
 * No `vscode` import.
 */

export interface Span {
  start: number;
  end: number;
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

export function findMarkers(text: string, marker: string): Span[] {
  if (!marker) return [];
  // As infill/holes.py: the closing brackets at the end of the marker ("]", ">>", ...)
  // may be preceded by ":N", a token count. Without closing brackets, only the marker.
  const body = marker.replace(/[)\]}>]+$/, "");
  let re: RegExp;
  if (body && body !== marker) {
    const tail = marker.slice(body.length);
    re = new RegExp(`${escape(body)}(?::[^${escape(tail)}\\s]*)?${escape(tail)}`, "g");
  } else {
    re = new RegExp(escape(marker), "g");
  }
  const out: Span[] = [];
  for (const m of text.matchAll(re)) out.push({ start: m.index!, end: m.index! + m[0].length });
  return out;
}

/** One line of at most `max` characters for a decoration (newlines shown as ⏎). */
export function oneLine(text: string, max = 80): string {
  const flat = text.replace(/\r?\n/g, "⏎").replace(/\t/g, "  ");
  return flat.length > max ? flat.slice(0, max - 1) + "…" : flat;
}
