// @ts-check
import { test } from "node:test";
import assert from "node:assert/strict";
import { LABEL_WINDOW, LabelState } from "../labels.mjs";
import { defaultKeys } from "./keytable.mjs";

/**
 * @param {number} row
 * @param {(number | null)[]} labels
 */
const values = (row, labels, extra = {}) => ({ row, labels, exclude: false, validation: false, suggest: null, name: `r${row}`, ...extra });

/**
 * A state over rows 100.. with known values for the given rows.
 * @param {number} n
 * @param {import("../types.mjs").RowValues[]} [known]
 * @param {string[]} [classes]
 */
function stateWith(n, known = [], classes = ["a", "b", "c"]) {
  const state = new LabelState();
  state.setClasses(classes, defaultKeys(classes.length).classes);
  state.setQueue(Array.from({ length: n }, (_, i) => 100 + i));
  state.receive(known);
  return state;
}

test("moving clamps to the queue; shift extends the selection; clicks toggle it", () => {
  const state = stateWith(5);
  assert.equal(state.move(-1), true);
  assert.equal(state.cursor, 0);
  state.move(10);
  assert.equal(state.cursor, 4);
  state.move(-1, true);
  assert.deepEqual(state.selectedRows(), [103, 104]);
  state.select(1, "toggle");
  assert.deepEqual(state.selectedRows(), [101, 103, 104]);
  state.select(1, "toggle");
  assert.deepEqual(state.selectedRows(), [103, 104]);
  state.select(2);
  assert.deepEqual(state.selectedRows(), [102]);
  assert.equal(state.row, 102);
  assert.equal(new LabelState().move(1), false);
});

test("Shift-click selects the range from the anchor; Esc clears a selection of several", () => {
  const state = stateWith(20);
  state.select(3);
  state.select(7, "range");
  assert.deepEqual(state.selectedRows(), [103, 104, 105, 106, 107]);
  assert.equal(state.cursor, 7);
  state.select(1, "range"); // the anchor stays where the plain click was
  assert.deepEqual(state.selectedRows(), [101, 102, 103]);
  state.select(10, "toggle");
  state.select(12, "range"); // a Ctrl-click moves the anchor
  assert.deepEqual(state.selectedRows(), [110, 111, 112]);
  assert.equal(state.clearSelection(), true);
  assert.deepEqual(state.selectedRows(), [112]);
  assert.equal(state.clearSelection(), false, "nothing left to clear: Esc leaves the widget");
});

test("a class key cycles the class on every selected row, from the current row's value", () => {
  const state = stateWith(3, [values(100, [1, null]), values(101, [null, null])], ["a", "b"]);
  state.move(1, true);
  state.move(-1, true); // cursor back on 100, selection {100, 101}
  assert.deepEqual(state.edits({ type: "cycle", classIndex: 0 }), [{ rows: [100, 101], changes: { a: 0 } }]);
  assert.deepEqual(state.edits({ type: "toggle", field: "exclude" }), [{ rows: [100, 101], changes: { exclude: true } }]);
  assert.deepEqual(state.edits({ type: "cycle", classIndex: 5 }), []);
});

test("no edit before the current row's values are known", () => {
  const state = stateWith(3);
  assert.deepEqual(state.edits({ type: "cycle", classIndex: 0 }), []);
});

test("0 sets only unset classes, grouping rows with the same changes", () => {
  const state = stateWith(3, [values(100, [1, null, null]), values(101, [null, 0, null]), values(102, [1, null, null])]);
  state.move(1, true);
  state.move(1, true);
  state.move(-2, true);
  assert.deepEqual(state.edits({ type: "rest-negative" }), [
    { rows: [100, 102], changes: { b: 0, c: 0 } },
    { rows: [101], changes: { a: 0, c: 0 } },
  ]);
});

test("0 never sets a class the user cannot reach with a key", () => {
  const classes = Array.from({ length: 31 }, (_, i) => `c${i}`);
  const keyed = defaultKeys(31).classes.filter((k) => k !== null).length;
  assert.ok(keyed < 31, "the default table runs out of keys before 31 classes");
  const state = stateWith(1, [values(100, classes.map(() => null))], classes);
  const [edit] = state.edits({ type: "rest-negative" });
  assert.equal(Object.keys(edit.changes).length, keyed);
  assert.ok(!(`c${keyed}` in edit.changes));
  // a chosen table: only the classes with a key are set
  const chosen = new LabelState();
  chosen.setClasses(["a", "b", "c"], ["1", null, "q"]);
  chosen.setQueue([100]);
  chosen.receive([values(100, [null, null, null])]);
  assert.deepEqual(chosen.edits({ type: "rest-negative" }), [{ rows: [100], changes: { a: 0, c: 0 } }]);
});

test("optimistic edits show at once and count as pending until settled", () => {
  const state = stateWith(2, [values(100, [null, null])], ["a", "b"]);
  const first = { rows: [100, 101], changes: { b: 1, exclude: true } };
  state.applyOptimistic(first);
  assert.deepEqual(state.values.get(100)?.labels, [null, 1]);
  assert.equal(state.values.get(100)?.exclude, true);
  assert.equal(state.pendingCount, 2);
  const second = { rows: [100], changes: { a: 0 } };
  state.applyOptimistic(second);
  state.settle(first);
  assert.equal(state.pendingCount, 1);
  assert.ok(state.isPending(100) && !state.isPending(101));
  state.settle(second);
  assert.equal(state.pendingCount, 0);
});

test("a reply that predates an edit still on its way does not undo that edit", () => {
  const state = stateWith(1, [values(100, [null, null, null])]);
  const yesA = { rows: [100], changes: { a: 1 } };
  const yesB = { rows: [100], changes: { b: 1 } };
  state.applyOptimistic(yesA);
  state.applyOptimistic(yesB);
  state.receive([values(100, [1, null, null])]); // the kernel's ack of the first edit
  state.settle(yesA);
  assert.deepEqual(state.current?.labels, [1, 1, null]);
  assert.deepEqual(state.edits({ type: "rest-negative" }), [{ rows: [100], changes: { c: 0 } }]);
});

test("values are fetched for a window around the cursor, in batches, not for the whole queue", () => {
  const n = 100_000;
  const state = stateWith(n);
  const first = state.wanted(15);
  assert.equal(first.length, LABEL_WINDOW.ahead + 1); // the cursor and the rows ahead of it
  assert.equal(first[0], 100);
  assert.deepEqual(state.wanted(15), [], "rows already asked for are not asked for again");
  state.receive(first.map((r) => values(r, [null])));
  for (let i = 0; i < LABEL_WINDOW.ahead / 2 - 1; i++) state.move(1);
  assert.deepEqual(state.wanted(15), [], "no request while the rows near the cursor are known");
  state.move(2);
  const next = state.wanted(15);
  assert.ok(next.length > 0 && next.length <= LABEL_WINDOW.ahead, `${next.length} rows`);
  assert.equal(Math.min(...next), 100 + LABEL_WINDOW.ahead + 1);
});

test("new predictions re-fetch only the window; forgotten requests are asked again", () => {
  const state = stateWith(1000);
  const first = state.wanted(15);
  state.receive(first.map((r) => values(r, [null])));
  state.invalidate();
  const again = state.wanted(15);
  assert.deepEqual(again, first);
  assert.deepEqual(state.wanted(15), []);
  state.forget(again);
  assert.deepEqual(state.wanted(15), first);
  assert.ok(state.values.has(100), "stale values stay on screen until fresh ones arrive");
});

test("a new class list drops every row's values", () => {
  const state = stateWith(2, [values(100, [1])]);
  state.setClasses(["a", "b"], ["1", "2"]);
  assert.equal(state.current, undefined);
  assert.equal(state.wanted(15).length, 2);
});

test("a queue re-ranked after the cursor keeps the cursor; a new sample starts over", () => {
  const state = stateWith(6);
  state.move(2);
  state.move(-1, true); // cursor 1, selection {1, 2}
  assert.equal(state.setQueue([100, 101, 205, 204, 203]), true);
  assert.equal(state.cursor, 1);
  assert.deepEqual(state.selectedRows(), [101], "selected rows after the cursor were re-ranked away");
  state.move(1); // cursor 2 (row 205); the kernel re-ranks from position 1, not having heard of it
  assert.equal(state.setQueue([100, 101, 207, 205, 206]), true);
  assert.equal(state.cursor, 3, "the cursor follows the image on screen");
  assert.deepEqual(state.selectedRows(), [205]);
  state.move(1); // row 206, which the next re-ranking drops
  assert.equal(state.setQueue([100, 101, 207, 208, 209]), false);
  assert.equal(state.cursor, 3, "the first image that changed");
  assert.equal(state.setQueue([300, 301]), false);
  assert.equal(state.cursor, 0);
  assert.deepEqual(state.selectedRows(), [300]);
});
