// @ts-check
import { test } from "node:test";
import assert from "node:assert/strict";
import { BINDINGS, CLASS_LETTERS, MAX_KEYED_CLASSES, actionForKey, classKey, classKeysText, cycleValue, flagKey, helpText, keyChanges } from "../keymap.mjs";

const ctx = { nClasses: 3, columns: 5 };
/**
 * @param {string} k
 * @param {object} [extra]
 */
const key = (k, extra = {}, c = ctx) => actionForKey({ key: k, ...extra }, c);

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

test("a class edit that moves keys says which", () => {
  assert.equal(keyChanges(["cat", "dog", "owl", "bat"], ["cat", "owl", "bat"]), "owl 3 → 2, bat 4 → 3");
  assert.equal(keyChanges(["cat", "dog"], ["cat", "dog", "owl"]), "", "adding at the end moves nothing");
  assert.equal(keyChanges(["cat", "dog"], ["cat", "hound"]), "", "a renamed class keeps its place");
  const many = Array.from({ length: 11 }, (_, i) => `c${i}`);
  assert.equal(keyChanges(many, many.slice(1)).split(", ").at(-1), "c10 c → b");
});

test("letters map to flags, undo, accept; 0 is rest-negative; Esc leaves", () => {
  assert.deepEqual(key("x"), { type: "toggle", field: "exclude" });
  assert.deepEqual(key("X"), { type: "toggle", field: "exclude" });
  assert.deepEqual(key("v"), { type: "toggle", field: "validation" });
  assert.deepEqual(key("0"), { type: "rest-negative" });
  assert.deepEqual(key("u"), { type: "undo" });
  assert.deepEqual(key("z", { ctrlKey: true }), { type: "undo" });
  assert.deepEqual(key("Z", { metaKey: true }), { type: "undo" });
  assert.deepEqual(key("a"), { type: "accept" });
  assert.deepEqual(key("A", { shiftKey: true }), { type: "accept", next: true });
  assert.deepEqual(key("Escape"), { type: "leave" });
  assert.deepEqual(key("z"), { type: "full" });
  assert.deepEqual(key("n"), { type: "similar" });
  assert.deepEqual(key("/"), { type: "find" });
});

test("classes 1-9 have digits, then the letters no action uses, in order", () => {
  assert.deepEqual(CLASS_LETTERS.slice(0, 4), ["b", "c", "d", "e"]);
  for (const bound of ["a", "n", "u", "v", "x", "z"]) assert.ok(!CLASS_LETTERS.includes(bound));
  assert.equal(MAX_KEYED_CLASSES, 9 + 20);
  assert.equal(classKey(0), "1");
  assert.equal(classKey(8), "9");
  assert.equal(classKey(9), "b");
  assert.equal(classKey(11), "d");
  assert.equal(classKey(MAX_KEYED_CLASSES - 1), "y");
  assert.equal(classKey(MAX_KEYED_CLASSES), null);
  assert.throws(() => classKey(-1), /class index must be an integer >= 0, got -1/);
});

test("each class key cycles its class; keys past the classes are swallowed", () => {
  const twelve = { nClasses: 12, columns: 5 };
  for (let i = 0; i < 12; i++) {
    assert.deepEqual(key(/** @type {string} */ (classKey(i)), {}, twelve), { type: "cycle", classIndex: i });
  }
  assert.deepEqual(key("D", { shiftKey: true }, twelve), { type: "cycle", classIndex: 11 });
  assert.deepEqual(key("e", {}, twelve), { type: "ignored", key: "e" });
  assert.deepEqual(key("4"), { type: "ignored", key: "4" });
  assert.deepEqual(key("9"), { type: "ignored", key: "9" });
});

test("notebook shortcut letters never pass through; modified keys and Tab do", () => {
  assert.deepEqual(key("b"), { type: "ignored", key: "b" });
  assert.deepEqual(key("m"), { type: "ignored", key: "m" });
  assert.equal(key("c", { ctrlKey: true }), null);
  assert.equal(key("1", { altKey: true }), null);
  assert.equal(key("Tab"), null);
  assert.equal(key("F5"), null);
});

test("the flags show the keys the table gives them", () => {
  assert.equal(flagKey("exclude"), "x");
  assert.equal(flagKey("validation"), "v");
});

test("the help is written from the keymap table", () => {
  const help = helpText(12);
  assert.match(help, /^Keys: 1-9, then b c d cycle a class/);
  for (const b of BINDINGS) assert.ok(help.includes(`${b.label} ${b.help}`), b.label);
  assert.equal(classKeysText(2), "1, 2");
  assert.equal(classKeysText(0), "");
  assert.match(helpText(40), /classes past the first 29: click their toggle/);
});

test("the tri-state cycle is unlabeled -> 1 -> 0 -> unlabeled", () => {
  assert.equal(cycleValue(null), 1);
  assert.equal(cycleValue(Number.NaN), 1);
  assert.equal(cycleValue(1), 0);
  assert.equal(cycleValue(0), null);
});
