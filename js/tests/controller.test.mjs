// @ts-check
// The labeler's behaviour without a browser: a fake widget model and kernel (fake-model.mjs).
import { test } from "node:test";
import assert from "node:assert/strict";
import { LabelController } from "../controller.mjs";
import { LABEL_WINDOW } from "../labels.mjs";
import { Rpc, TIMEOUTS } from "../rpc.mjs";
import { FakeKernel, FakeModel, FakeTimers, settle } from "./fake-model.mjs";

const CLASSES = ["cat", "dog", "owl"];

/** A controller over a fake model whose kernel holds `nRows` rows; the queue is rows 0.. */
function setup(nRows = 20, queueLength = nRows) {
  const model = new FakeModel({ classes: CLASSES, queue: Array.from({ length: queueLength }, (_, i) => i) });
  const kernel = new FakeKernel(model, CLASSES, nRows);
  const timers = new FakeTimers();
  const notes = /** @type {[string, boolean][]} */ ([]);
  const rpc = new Rpc((m) => model.send(m), { viewId: "t", setTimer: (f, ms) => timers.set(f, ms), clearTimer: (t) => timers.clear(t) });
  const control = new LabelController(/** @type {any} */ (model), {
    rpc, now: () => timers.now, onNote: (text, isError) => notes.push([text, isError]),
  });
  model.on("msg:custom", (msg) => control.receive(msg));
  control.classesChanged();
  return { model, kernel, timers, notes, control };
}

test("the view asks for the rows near the cursor, then labels by key and is acknowledged", async () => {
  const { model, kernel, control } = setup();
  await settle();
  assert.equal(model.sentOf("labels").length, 1);
  assert.equal(control.state.current?.name, "img0.png");
  control.run({ type: "cycle", classIndex: 1 });
  assert.equal(control.status().state, "pending", "shown at once, as pending");
  assert.deepEqual(control.state.current?.labels, [null, 1, null]);
  await settle();
  assert.deepEqual(kernel.table[0].labels, [null, 1, null]);
  assert.deepEqual(control.status(), { text: "all saved", state: "saved" });
  control.run({ type: "rest-negative" });
  await settle();
  assert.deepEqual(kernel.table[0].labels, [0, 1, 0]);
  assert.equal(control.state.cursor, 1, "0 moves on");
});

test("a lost acknowledgement never leaves 'saving' on screen: the row is re-read", async () => {
  const { kernel, timers, notes, control } = setup();
  await settle();
  kernel.drop("annotate");
  control.run({ type: "toggle", field: "exclude" });
  await settle();
  assert.equal(control.status().state, "pending");
  timers.advance(TIMEOUTS.default);
  await settle();
  assert.match(notes.at(-1)?.[0] ?? "", /did not answer within 15 s/);
  assert.equal(notes.at(-1)?.[1], true);
  // The re-read answered: the view shows what the kernel holds (not excluded), all settled.
  assert.equal(control.state.current?.exclude, false);
  assert.deepEqual(control.status(), { text: "all saved", state: "saved" });
});

test("with the kernel silent, the status says 'not confirmed' instead of 'saving' forever", async () => {
  const { kernel, timers, control } = setup();
  await settle();
  kernel.drop("annotate");
  kernel.drop("labels");
  control.run({ type: "cycle", classIndex: 0 });
  timers.advance(TIMEOUTS.default);
  await settle();
  assert.deepEqual(control.status(), { text: "1 not confirmed", state: "unconfirmed" });
  timers.advance(TIMEOUTS.default);
  await settle();
  assert.equal(control.status().state, "unconfirmed");
  kernel.dropping.clear();
  control.reread([0]);
  await settle();
  assert.equal(control.status().state, "saved");
});

test("a refused edit shows the kernel's message and restores the kernel's values", async () => {
  const { model, kernel, notes, control } = setup();
  await settle();
  model.traits.classes = [...CLASSES, "ghost"]; // the view knows a class the kernel does not
  control.classesChanged();
  await settle();
  control.run({ type: "cycle", classIndex: 3 });
  await settle();
  assert.deepEqual(notes.at(-1), ["unknown field ghost", true]);
  assert.deepEqual(control.state.current?.labels, [null, null, null]);
  assert.equal(control.status().state, "saved");
  assert.deepEqual(kernel.table[0].labels, [null, null, null]);
});

test("after a big sample only the rows near the cursor are fetched, again on new predictions", async () => {
  const { model, control } = setup(100_000);
  await settle();
  const fetched = () => model.sentOf("labels").flatMap((m) => m.rows).length;
  assert.equal(fetched(), LABEL_WINDOW.ahead + 1);
  model.set("revision", 1);
  control.revisionChanged();
  await settle();
  assert.equal(fetched(), 2 * (LABEL_WINDOW.ahead + 1));
  for (let i = 0; i < 150; i++) control.move(1, false);
  await settle();
  assert.ok(fetched() < 4 * (LABEL_WINDOW.ahead + 1), `${fetched()} rows fetched for 150 moves`);
});

test("accept without predictions says so and sends nothing", async () => {
  const { model, notes, control } = setup();
  await settle();
  control.run({ type: "accept" });
  await settle();
  assert.deepEqual(notes.at(-1), ["No model predictions yet.", true]);
  assert.equal(model.sentOf("accept").length, 0);
});

test("Shift+A accepts the solid suggestions, then moves to the next image", async () => {
  const { kernel, control } = setup();
  Object.assign(kernel.table[0], { suggest: [0.97, 0.097, 0.5], strength: ["solid", "solid", "faint"] });
  await settle();
  control.run({ type: "accept", next: true });
  await settle();
  assert.deepEqual(kernel.table[0].labels, [1, 0, null]);
  assert.equal(control.state.cursor, 1);
  control.run({ type: "accept" });
  await settle();
  assert.equal(control.state.cursor, 1, "a alone stays (and, without predictions, writes nothing)");
});

test("undo moves to the image it changed and names it; nothing left says so", async () => {
  const { kernel, notes, control } = setup();
  await settle();
  control.run({ type: "cycle", classIndex: 1 });
  control.run({ type: "move", delta: 1, extend: false });
  control.run({ type: "move", delta: 1, extend: false });
  await settle();
  control.run({ type: "undo" });
  await settle();
  assert.equal(control.state.cursor, 0, "back on the undone image");
  assert.deepEqual(kernel.table[0].labels, [null, null, null]);
  assert.deepEqual(notes.at(-1), ["Undone: img0.png (row 0) is back to cat ?, dog ?, owl ?.", false]);
  control.run({ type: "undo" });
  await settle();
  assert.deepEqual(notes.at(-1), ["Nothing to undo.", false]);
});

test("moving on from the last image of the sample is the end: the view is told, the cursor stays", async () => {
  const { control } = setup(3);
  let ends = 0;
  control.onEnd = () => ends++;
  await settle();
  control.run({ type: "move", delta: 1, extend: false });
  control.run({ type: "move", delta: 1, extend: false });
  assert.equal(ends, 0);
  control.run({ type: "rest-negative" }); // labels the last image, then "next"
  assert.equal(ends, 1);
  assert.equal(control.state.cursor, 2);
});

test("ignored keys leave the last message; other actions clear it", async () => {
  const { notes, control } = setup();
  await settle();
  control.run({ type: "accept" });
  const before = notes.length;
  control.run({ type: "ignored", key: "b" });
  assert.equal(notes.length, before);
  control.run({ type: "move", delta: 1, extend: false });
  assert.deepEqual(notes.at(-1), ["", false]);
});

test("save reports the path; time per image is measured between actions", async () => {
  const { model, timers, notes, control } = setup();
  await settle();
  await control.save();
  assert.deepEqual(notes.at(-1), ["Saved to /tmp/x.csv", false]);
  timers.advance(2500);
  control.run({ type: "cycle", classIndex: 0 });
  assert.equal(model.sentOf("annotate")[0].seconds, 2.5);
});

test("a very wide grid still asks for at most the kernel's limit per request", async () => {
  const { model, control } = setup(10_000);
  model.traits.columns = 400; // 1,200 images a page
  control.classesChanged();
  await settle();
  const sizes = model.sentOf("labels").map((m) => m.rows.length);
  assert.ok(sizes.every((n) => n <= 1000), `request sizes ${sizes}`);
});

test("the kernel hears where the cursor is, and online re-ranking keeps it there", async () => {
  const { model, control } = setup();
  await settle();
  control.move(3, false);
  control.select(2, "only");
  assert.deepEqual(model.sentOf("cursor").map((m) => m.index), [3, 2]);
  model.traits.queue = [0, 1, 2, 19, 18, 17];
  control.queueChanged();
  assert.equal(control.state.cursor, 2);
  assert.equal(control.state.row, 2);
});

test("a sample this view asked for starts at the first image, even when it begins the same", async () => {
  const { model, control } = setup();
  await settle();
  control.move(4, false);
  const done = control.sample({ kind: "unlabeled", cls: null }, { name: "random", cls: null }, 5);
  const [request] = model.sentOf("sample");
  control.receive({ type: "sampled", id: request.id, count: 5 });
  model.traits.queue = [0, 1, 2, 3, 4];
  control.queueChanged();
  await done;
  assert.equal(control.state.cursor, 0);
});

test("a jump moves to a queued image, or puts the image after the cursor and moves to it", async () => {
  const { model, control, notes } = setup(20, 10);
  model.on("change:queue", () => control.queueChanged());
  await settle();
  control.run({ type: "move", delta: 2, extend: false });
  await settle();
  assert.equal(await control.jump("img15.png"), true);
  assert.deepEqual(model.get("queue").slice(0, 5), [0, 1, 2, 15, 3]);
  assert.equal(control.state.cursor, 3);
  await settle();
  assert.equal(control.state.current?.name, "img15.png");
  assert.equal(await control.jump("img7.png"), true);
  assert.equal(control.state.cursor, 8, "a queued image is found where it is");
  assert.equal(await control.jump("zebra.png"), false);
  assert.equal(control.state.cursor, 8, "no match: the cursor stays");
  assert.deepEqual(notes.at(-1), ["no file name contains 'zebra.png'", true]);
});

test("more like this: the queue starts at the current image, its neighbours follow", async () => {
  const { model, control, notes } = setup(20, 10);
  model.on("change:queue", () => control.queueChanged());
  await settle();
  control.run({ type: "move", delta: 4, extend: false });
  await control.similar();
  assert.deepEqual(model.get("queue"), [4, 19, 18, 17, 16, 15]);
  assert.equal(control.state.cursor, 0);
  assert.equal(control.state.row, 4);
  assert.deepEqual(notes.at(-1), ["The 5 images most like this one follow it (→).", false]);
});

test("a view that renders again starts where the kernel last heard its cursor was", async () => {
  const model = new FakeModel({ classes: CLASSES, queue: [5, 6, 7, 8], cursor: 2 });
  const control = new LabelController(/** @type {any} */ (model), { rpc: new Rpc(() => {}), now: () => 0 });
  assert.equal(control.state.cursor, 2);
  assert.equal(control.state.row, 7);
  const beyond = new LabelController(/** @type {any} */ (new FakeModel({ classes: CLASSES, queue: [5, 6], cursor: 9 })), { rpc: new Rpc(() => {}), now: () => 0 });
  assert.equal(beyond.state.cursor, 1, "a cursor past the queue's end is clamped");
});

test("a re-pressed class key does not flip a label given before the cursor arrived", async () => {
  const { kernel, notes, control } = setup();
  kernel.table[0].labels = [1, null, 0];
  await settle();
  control.run({ type: "cycle", classIndex: 0 });
  await settle();
  assert.deepEqual(kernel.table[0].labels, [1, null, 0], "the first press keeps yes");
  assert.match(notes.at(-1)?.[0] ?? "", /cat is already yes: press 1 again to change it/);
  control.run({ type: "cycle", classIndex: 0 });
  await settle();
  assert.deepEqual(kernel.table[0].labels, [0, null, 0], "the second press in the visit cycles");
  control.run({ type: "cycle", classIndex: 1 });
  control.run({ type: "cycle", classIndex: 1 });
  await settle();
  assert.deepEqual(kernel.table[0].labels, [0, 0, 0], "an unset class cycles from the first press");
  control.run({ type: "cycle", classIndex: 2, click: true });
  await settle();
  assert.deepEqual(kernel.table[0].labels, [0, 0, null], "a click on a toggle always cycles");
  control.move(1, false);
  control.move(-1, false);
  await settle();
  control.run({ type: "cycle", classIndex: 0 });
  await settle();
  assert.deepEqual(kernel.table[0].labels, [0, 0, null], "back on the image, a new visit holds again");
});

test("a restarted kernel never looks alive: unacknowledged edits stay unsaved, writing keys are refused", async () => {
  const { model, kernel, notes, control } = setup();
  await settle();
  kernel.drop("annotate");
  control.run({ type: "cycle", classIndex: 0 });
  await settle();
  control.kernelGone("the notebook's kernel restarted");
  assert.deepEqual(control.status(), { text: "kernel gone · 1 not saved", state: "gone" });
  assert.match(notes.at(-1)?.[0] ?? "", /kernel is gone.*model and its predictions are gone/);
  const sent = model.sent.length;
  control.run({ type: "cycle", classIndex: 1 });
  control.run({ type: "toggle", field: "exclude" });
  control.run({ type: "undo" });
  assert.deepEqual(model.sent.slice(sent).map((m) => m.type), [], "nothing was sent");
  assert.deepEqual(kernel.table[0].labels, [null, null, null]);
  assert.match(notes.at(-1)?.[0] ?? "", /^Not saved: The kernel is gone/);
  assert.deepEqual(control.state.current?.labels, [1, null, null], "the refused keys changed nothing on screen");
  control.run({ type: "move", delta: 1, extend: false });
  assert.equal(control.state.cursor, 1, "looking around still works");
  assert.match(notes.at(-1)?.[0] ?? "", /kernel is gone/, "a move does not clear what the view must keep saying");
  assert.equal(control.status().state, "gone", "no timeout turns the lost edit into 'saved'");
});

test("a send that fails (the comm is closed) marks the kernel gone", async () => {
  const { model, notes, control } = setup();
  await settle();
  model.send = () => {
    throw new Error("Cannot send on a closed comm");
  };
  control.run({ type: "cycle", classIndex: 0 });
  await settle();
  assert.equal(control.status().state, "gone");
  assert.match(control.gone ?? "", /closed comm/);
  assert.deepEqual(control.status(), { text: "kernel gone · 1 not saved", state: "gone" }, "the edit is not saved");
  assert.match(notes.at(-1)?.[0] ?? "", /^The kernel is gone/, "the message says why, not only that a send failed");
});

test("a key pressed while the image's labels are loading says so instead of vanishing", async () => {
  const { kernel, notes, control } = setup();
  await settle();
  kernel.drop("labels");
  control.classesChanged(); // a class edit: the values are fetched again
  assert.equal(control.state.current, undefined);
  control.run({ type: "cycle", classIndex: 0 });
  assert.match(notes.at(-1)?.[0] ?? "", /still loading: press the key again/);
  assert.equal(notes.at(-1)?.[1], false);
  assert.equal(kernel.table[0].labels[0], null, "nothing was written");
  kernel.dropping.clear();
  control.classesChanged();
  await settle();
  control.run({ type: "cycle", classIndex: 0 });
  await settle();
  assert.equal(kernel.table[0].labels[0], 1);
});
