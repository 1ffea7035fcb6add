import { test } from "node:test";
import assert from "node:assert/strict";
import { actionForKey, cycleValue } from "../keymap.mjs";

const ctx = { nClasses: 3, columns: 5 };
const key = (k, extra = {}) => actionForKey({ key: k, ...extra }, ctx);

test("arrows move by one or by a grid row, shift extends the selection", () => {
  assert.deepEqual(key("ArrowRight"), { type: "move", delta: 1, extend: false });
  assert.deepEqual(key("ArrowLeft"), { type: "move", delta: -1, extend: false });
  assert.deepEqual(key("ArrowDown"), { type: "move", delta: 5, extend: false });
  assert.deepEqual(key("ArrowUp", { shiftKey: true }), { type: "move", delta: -5, extend: true });
});

test("Enter and Space go to the next image", () => {
  assert.deepEqual(key("Enter"), { type: "move", delta: 1, extend: false });
  assert.deepEqual(key(" "), { type: "move", delta: 1, extend: false });
});

test("digits cycle the matching class; digits beyond the classes are swallowed", () => {
  assert.deepEqual(key("1"), { type: "cycle", classIndex: 0 });
  assert.deepEqual(key("3"), { type: "cycle", classIndex: 2 });
  assert.deepEqual(key("4"), { type: "ignored" });
  assert.deepEqual(key("9"), { type: "ignored" });
});

test("letters map to flags, undo, accept; 0 is rest-negative; Esc leaves", () => {
  assert.deepEqual(key("x"), { type: "toggle", field: "exclude" });
  assert.deepEqual(key("v"), { type: "toggle", field: "validation" });
  assert.deepEqual(key("0"), { type: "rest-negative" });
  assert.deepEqual(key("u"), { type: "undo" });
  assert.deepEqual(key("z", { ctrlKey: true }), { type: "undo" });
  assert.deepEqual(key("a"), { type: "accept" });
  assert.deepEqual(key("Escape"), { type: "leave" });
});

test("keys that are not ours pass through", () => {
  assert.equal(key("b"), null);
  assert.equal(key("m"), null);
  assert.equal(key("c", { ctrlKey: true }), null);
  assert.equal(key("1", { altKey: true }), null);
  assert.equal(key("Tab"), null);
});

test("the tri-state cycle is unlabeled -> 1 -> 0 -> unlabeled", () => {
  assert.equal(cycleValue(null), 1);
  assert.equal(cycleValue(Number.NaN), 1);
  assert.equal(cycleValue(1), 0);
  assert.equal(cycleValue(0), null);
});
