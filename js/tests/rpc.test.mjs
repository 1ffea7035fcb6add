// @ts-check
import { test } from "node:test";
import assert from "node:assert/strict";
import { RequestError, Rpc, TIMEOUTS } from "../rpc.mjs";
import { FakeTimers, settle } from "./fake-model.mjs";

/** An Rpc over a list of sent messages, with hand-driven timers. */
function setup() {
  /** @type {import("../types.mjs").Message[]} */
  const sent = [];
  const timers = new FakeTimers();
  const rpc = new Rpc((m) => sent.push(m), {
    viewId: "v1",
    setTimer: (fn, ms) => timers.set(fn, ms),
    clearTimer: (t) => timers.clear(t),
  });
  return { rpc, sent, timers };
}

test("requests carry view-unique ids and resolve with the reply that echoes the id", async () => {
  const { rpc, sent } = setup();
  const a = rpc.request({ type: "labels", rows: [1] });
  const b = rpc.request({ type: "labels", rows: [2] });
  assert.deepEqual(sent.map((m) => m.id), ["v1:1", "v1:2"]);
  assert.equal(rpc.handle({ type: "labels", id: "other:1", rows: [] }), false, "another view's reply");
  assert.equal(rpc.handle({ type: "labels", id: "v1:2", rows: [{ row: 2 }] }), true);
  assert.equal(rpc.handle({ type: "labels", id: "v1:1", rows: [{ row: 1 }] }), true);
  assert.deepEqual((await a).rows, [{ row: 1 }]);
  assert.deepEqual((await b).rows, [{ row: 2 }]);
  assert.equal(rpc.outstanding, 0);
  assert.equal(rpc.handle({ type: "labels", id: "v1:1", rows: [] }), false, "a second reply is ignored");
});

test("an error reply rejects with the kernel's message", async () => {
  const { rpc } = setup();
  const p = rpc.request({ type: "class", action: "add", name: "" });
  rpc.handle({ type: "error", id: "v1:1", message: "a class name cannot be empty" });
  await assert.rejects(p, (err) => err instanceof RequestError && !err.timedOut && /cannot be empty/.test(err.message));
});

test("a lost reply rejects after the kind's timeout, and a late one is then ignored", async () => {
  const { rpc, timers } = setup();
  let outcome = "waiting";
  rpc.request({ type: "annotate", rows: [1], changes: { a: 1 } }).then(
    () => (outcome = "resolved"),
    (/** @type {RequestError} */ err) => (outcome = err.timedOut ? `timed out: ${err.message}` : "refused"),
  );
  timers.advance(TIMEOUTS.default - 1);
  await settle();
  assert.equal(outcome, "waiting");
  timers.advance(1);
  await settle();
  assert.match(outcome, /^timed out: The kernel did not answer within 15 s/);
  assert.equal(rpc.handle({ type: "ack", id: "v1:1", rows: [] }), false);
});

test("slow kinds (sample, save) wait longer than label requests", async () => {
  const { rpc, timers } = setup();
  let done = false;
  rpc.request({ type: "save" }).catch(() => (done = true));
  timers.advance(TIMEOUTS.default + 1);
  await settle();
  assert.equal(done, false);
  timers.advance(TIMEOUTS.save);
  await settle();
  assert.equal(done, true);
});

test("a send that throws rejects at once; close stops every timer", async () => {
  const timers = new FakeTimers();
  const rpc = new Rpc(() => { throw new Error("comm closed"); }, { setTimer: (f, ms) => timers.set(f, ms), clearTimer: (t) => timers.clear(t) });
  await assert.rejects(rpc.request({ type: "save" }), /Could not reach the kernel: Error: comm closed/);
  assert.equal(timers.timers.size, 0);
  const { rpc: open, timers: t2 } = setup();
  open.request({ type: "labels", rows: [1] });
  open.close();
  assert.equal(t2.timers.size, 0);
  assert.equal(open.outstanding, 0);
});

test("notify sends with an id and waits for nothing", () => {
  const { rpc, sent } = setup();
  rpc.notify({ type: "thumbs", rows: [1, 2] });
  assert.deepEqual(sent, [{ type: "thumbs", rows: [1, 2], id: "v1:1" }]);
  assert.equal(rpc.outstanding, 0);
});
