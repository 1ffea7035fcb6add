// @ts-check
import { test } from "node:test";
import assert from "node:assert/strict";
import { ACTIONS, actionForKey, classKey, classKeysText, cycleValue, flagKey, helpText, keyChanges, keyLabel } from "../keymap.mjs";
import { KERNEL_TABLE, defaultKeys } from "./keytable.mjs";

const ctx = { keys: defaultKeys(3), columns: 5 };
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

/** The classes with the kernel's default keys. */
const shown = (/** @type {string[]} */ classes) => ({ classes, keys: defaultKeys(classes.length) });

test("a class edit that moves keys says which", () => {
  assert.equal(keyChanges(shown(["cat", "dog", "owl", "bat"]), shown(["cat", "owl", "bat"])), "owl 3 → 2, bat 4 → 3");
  assert.equal(keyChanges(shown(["cat", "dog"]), shown(["cat", "dog", "owl"])), "", "adding at the end moves nothing");
  assert.equal(keyChanges(shown(["cat", "dog"]), shown(["cat", "hound"])), "", "a renamed class keeps its place");
  const many = Array.from({ length: 11 }, (_, i) => `c${i}`);
  assert.equal(keyChanges(shown(many), shown(many.slice(1))).split(", ").at(-1), "c10 c → b");
  const chosen = { classes: ["cat", "owl"], keys: { actions: KERNEL_TABLE.actions, classes: ["c", "1"] } };
  assert.equal(keyChanges({ classes: ["cat", "dog", "owl"], keys: { actions: KERNEL_TABLE.actions, classes: ["c", "1", "2"] } }, chosen),
    "owl 2 → 1", "a chosen key stays; the defaults move");
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

test("a class's key is the table's: 1-9, then the letters no action uses, then none", () => {
  const table = KERNEL_TABLE;
  assert.equal(classKey(table, 0), "1");
  assert.equal(classKey(table, 8), "9");
  assert.equal(classKey(table, 9), "b");
  assert.equal(classKey(table, 11), "d");
  assert.equal(classKey(table, 28), "y");
  assert.equal(classKey(table, 29), null);
  assert.equal(classKey(table, 99), null);
  assert.throws(() => classKey(table, -1), /class index must be an integer >= 0, got -1/);
});

test("a remapped key does what the table says, and the default key no longer does", () => {
  const keys = { actions: { ...KERNEL_TABLE.actions, exclude: ["e"], undo: ["r", "Backspace"] }, classes: ["c", "x", "1"] };
  const remapped = { keys, columns: 5 };
  assert.deepEqual(key("e", {}, remapped), { type: "toggle", field: "exclude" });
  assert.deepEqual(key("x", {}, remapped), { type: "cycle", classIndex: 1 }, "x now cycles a class");
  assert.deepEqual(key("c", {}, remapped), { type: "cycle", classIndex: 0 });
  assert.deepEqual(key("2", {}, remapped), { type: "ignored", key: "2" });
  assert.deepEqual(key("Backspace", {}, remapped), { type: "undo" });
  assert.deepEqual(key("z", { ctrlKey: true }, remapped), { type: "undo" }, "Ctrl+Z stays");
  assert.deepEqual(key("ArrowRight", {}, remapped), { type: "move", delta: 1, extend: false }, "arrows stay");
  assert.equal(flagKey(keys, "exclude"), "e");
  const help = helpText(keys);
  assert.match(help, /^Keys: c x 1 cycle a class/);
  assert.ok(help.includes("e exclude") && help.includes("r/Backspace/Ctrl+Z undo"), help);
  assert.ok(!help.includes("x exclude"));
});

test("each class key cycles its class; keys past the classes are swallowed", () => {
  const twelve = { keys: defaultKeys(12), columns: 5 };
  for (let i = 0; i < 12; i++) {
    assert.deepEqual(key(/** @type {string} */ (classKey(twelve.keys, i)), {}, twelve), { type: "cycle", classIndex: i });
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
  assert.equal(flagKey(KERNEL_TABLE, "exclude"), "x");
  assert.equal(flagKey(KERNEL_TABLE, "validation"), "v");
});

test("the help is written from the keymap table", () => {
  const help = helpText(defaultKeys(12));
  assert.match(help, /^Keys: 1-9, then b c d cycle a class/);
  for (const [name, spec] of Object.entries(ACTIONS)) {
    const label = KERNEL_TABLE.actions[name].map(keyLabel).join("/");
    assert.ok(help.includes(`${label}${name === "undo" ? "/Ctrl+Z" : ""} ${spec.help}`), name);
  }
  assert.ok(help.includes("Shift+A accept, then next") && help.includes("Enter/Space next") && help.includes("Esc leave"));
  assert.equal(classKeysText(defaultKeys(2)), "1, 2");
  assert.equal(classKeysText(defaultKeys(0)), "");
  assert.match(helpText(KERNEL_TABLE), /11 classes without a key: click their toggle/);
});

test("the tri-state cycle is unlabeled -> 1 -> 0 -> unlabeled", () => {
  assert.equal(cycleValue(null), 1);
  assert.equal(cycleValue(Number.NaN), 1);
  assert.equal(cycleValue(1), 0);
  assert.equal(cycleValue(0), null);
});
