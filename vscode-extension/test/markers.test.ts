import assert from "node:assert/strict";
import { describe as suite, test } from "node:test";
import { findMarkers, oneLine } from "../src/markers";

const spans = (t: string, m: string) => findMarkers(t, m).map((s) => t.slice(s.start, s.end));

suite("markers", () => {
  test("[MASK] and [MASK:N]", () => {
    assert.deepEqual(spans("a [MASK] b [MASK:12] c [MASK:x] d [MASK", "[MASK]"), ["[MASK]", "[MASK:12]", "[MASK:x]"]);
  });
  test("custom markers, with and without closing brackets", () => {
    assert.deepEqual(spans("x <<FILL>> y <<FILL:5>>", "<<FILL>>"), ["<<FILL>>", "<<FILL:5>>"]);
    assert.deepEqual(spans("a __ b ____", "__"), ["__", "__", "__"]);
    assert.deepEqual(spans("a ?? b", ""), []);
  });
  test("oneLine flattens and shortens live text", () => {
    assert.equal(oneLine("a\nb\tc"), "a⏎b  c");
    assert.equal(oneLine("x".repeat(100), 10), "xxxxxxxxx…");
  });
});
