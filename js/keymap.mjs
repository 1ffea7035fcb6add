// @ts-check
// The labeler's keyboard: the kernel's key table (patchwork_widget/widget/keys.py, sent as the
// `keymap` trait, with the keys people chose) both turns a keydown into an action and writes
// the help text, so the keys a user reads are the keys that work. Free of the DOM (unit-tested
// with node's test runner).

/**
 * @typedef {{type: "move", delta: number, extend: boolean}
 *   | {type: "cycle", classIndex: number, click?: boolean}
 *   | {type: "toggle", field: "exclude" | "validation"}
 *   | {type: "rest-negative"} | {type: "accept", next?: boolean} | {type: "undo"} | {type: "leave"}
 *   | {type: "full"} | {type: "similar"} | {type: "find"}
 *   | {type: "ignored", key: string}} Action
 * @typedef {{key: string, shiftKey?: boolean, ctrlKey?: boolean, metaKey?: boolean, altKey?: boolean}} KeyLike
 * @typedef {{actions: Record<string, string[]>, classes: (string | null)[]}} KeyTable  which key does
 *   what: the kernel's table (patchwork_widget/widget/keys.py, the labeler's `keymap` trait);
 *   `classes`: one key per class, in class order (null: no key, a click labels it)
 * @typedef {{keys: KeyTable, columns: number}} KeyContext
 * @typedef {{help: string, act: () => Action}} ActionSpec
 */

/**
 * What each action of the key table does, in the order the help lists them. The keys come
 * from the table; the names are the kernel's (widget/keys.py, DEFAULT_ACTION_KEYS).
 * @type {Record<string, ActionSpec>}
 */
export const ACTIONS = {
  rest_negative: { help: "classes still ? are no, then next", act: () => ({ type: "rest-negative" }) },
  exclude: { help: "exclude", act: () => ({ type: "toggle", field: "exclude" }) },
  validation: { help: "validation", act: () => ({ type: "toggle", field: "validation" }) },
  accept: { help: "accept suggestions", act: () => ({ type: "accept" }) },
  accept_next: { help: "accept, then next", act: () => ({ type: "accept", next: true }) },
  undo: { help: "undo", act: () => ({ type: "undo" }) },
  full: { help: "full resolution (zoom, pan; Esc closes)", act: () => ({ type: "full" }) },
  similar: { help: "more like this (nearest neighbours)", act: () => ({ type: "similar" }) },
  find: { help: "jump to a file by name", act: () => ({ type: "find" }) },
  next: { help: "next", act: () => ({ type: "move", delta: 1, extend: false }) },
  leave: { help: "leave the widget", act: () => ({ type: "leave" }) },
};

/** The fixed keys: arrows move (Shift extends the selection); Ctrl/Cmd+Z undoes. */
const ARROWS = ["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown"];
const CTRL_UNDO = "z";

/** @type {WeakMap<KeyTable, Map<string, Action>>} each table's key -> action, built once */
const LOOKUPS = new WeakMap();

/**
 * The table as a lookup: key -> action (classes and actions; the kernel refused any key that
 * would do two things).
 * @param {KeyTable} table
 * @returns {Map<string, Action>}
 */
function lookup(table) {
  let map = LOOKUPS.get(table);
  if (map) return map;
  map = new Map();
  for (const [name, keys] of Object.entries(table.actions)) {
    const spec = ACTIONS[name];
    if (!spec) continue; // an action this view does not know (a newer kernel): no key
    for (const key of keys) map.set(key, spec.act());
  }
  for (const [classIndex, key] of table.classes.entries()) {
    if (key !== null) map.set(key, { type: "cycle", classIndex });
  }
  LOOKUPS.set(table, map);
  return map;
}

/**
 * The key that cycles class `index`, or null when it has none.
 * @param {KeyTable} table
 * @param {number} index
 * @returns {string | null}
 */
export function classKey(table, index) {
  if (!Number.isInteger(index) || index < 0) throw new RangeError(`class index must be an integer >= 0, got ${index}`);
  return table.classes[index] ?? null;
}

/**
 * The key of the exclude or validation toggle, from the table.
 * @param {KeyTable} table
 * @param {"exclude" | "validation"} field
 * @returns {string}
 */
export function flagKey(table, field) {
  const key = table.actions[field]?.[0];
  if (key === undefined) throw new Error(`no key toggles ${field}`);
  return key;
}

/**
 * How a key reads in the help: "Space", "Esc", "Shift+A".
 * @param {string} key
 */
export function keyLabel(key) {
  if (key === " ") return "Space";
  if (key === "Escape") return "Esc";
  if (key.length === 1 && key !== key.toLowerCase()) return `Shift+${key}`;
  return key;
}

/**
 * Translate a keydown into a labeling action.
 *
 * Single characters that name no action are swallowed (`ignored`): while the widget has the
 * keyboard, a notebook shortcut must never fire by accident. Modified keys other than
 * Ctrl/Cmd+Z pass through (copy, paste, browser shortcuts), and so do Tab and function keys.
 * A key not in the table is tried in lower case too (Shift+X excludes when x does).
 *
 * @param {KeyLike} ev
 * @param {KeyContext} ctx  the key table and the grid's columns
 * @returns {Action | null} an action, or null when the key is not ours (let it through)
 */
export function actionForKey(ev, ctx) {
  const { key } = ev;
  if (ev.altKey) return null;
  if (ev.ctrlKey || ev.metaKey) return key.toLowerCase() === CTRL_UNDO ? { type: "undo" } : null;
  if (ARROWS.includes(key)) {
    const row = Math.max(1, ctx.columns);
    const delta = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -row, ArrowDown: row }[key] ?? 0;
    return { type: "move", delta, extend: Boolean(ev.shiftKey) };
  }
  const map = lookup(ctx.keys);
  const action = map.get(key) ?? map.get(key.toLowerCase());
  if (action) return action;
  return key.length === 1 ? { type: "ignored", key } : null;
}

/**
 * Classes whose key a class edit changed (default keys follow the class order, so removing a
 * class moves every later one): "owl 3 → 2, moss none → d". Empty when no kept class changed key.
 * @param {{classes: string[], keys: KeyTable}} before  the class list and key table before the edit
 * @param {{classes: string[], keys: KeyTable}} after
 * @returns {string}
 */
export function keyChanges(before, after) {
  const changed = [];
  for (const [i, name] of after.classes.entries()) {
    const was = before.classes.indexOf(name);
    if (was < 0) continue; // a new class (or a new name): its key is shown on its toggle
    const [oldKey, newKey] = [classKey(before.keys, was), classKey(after.keys, i)];
    if (oldKey !== newKey) changed.push(`${name} ${oldKey ?? "none"} → ${newKey ?? "none"}`);
  }
  return changed.join(", ");
}

/**
 * The keys of the class toggles, compactly: "1-9, then b c d" for 12 classes with the
 * default keys; chosen keys are listed as they are.
 * @param {KeyTable} table
 * @returns {string}
 */
export function classKeysText(table) {
  const keys = /** @type {string[]} */ (table.classes.filter((k) => k !== null));
  let digits = 0;
  while (digits < Math.min(9, keys.length) && keys[digits] === String(digits + 1)) digits++;
  const head = keys.slice(0, digits);
  const rest = keys.slice(digits);
  const span = head.length > 2 ? `${head[0]}-${head.at(-1)}` : head.join(", ");
  if (!span) return rest.join(" ");
  return rest.length ? `${span}, then ${rest.join(" ")}` : span;
}

/**
 * The help line, written from the same table that handles the keys.
 * @param {KeyTable} table
 * @returns {string}
 */
export function helpText(table) {
  const parts = [];
  const keyed = classKeysText(table);
  if (keyed) parts.push(`${keyed} cycle a class (? → yes → no)`);
  const unkeyed = table.classes.filter((k) => k === null).length;
  if (unkeyed) parts.push(`${unkeyed} class${unkeyed === 1 ? "" : "es"} without a key: click their toggle`);
  parts.push("arrows move (shift extends the selection)");
  for (const [name, spec] of Object.entries(ACTIONS)) {
    const keys = (table.actions[name] ?? []).map(keyLabel);
    if (name === "undo") keys.push("Ctrl+Z");
    if (keys.length) parts.push(`${keys.join("/")} ${spec.help}`);
  }
  return `Keys: ${parts.join(" · ")}`;
}

/**
 * Next value of a tri-state class toggle: unlabeled -> 1 -> 0 -> unlabeled.
 * Positive first, since "this image shows C" is the label a user reaches for.
 *
 * @param {number | null | undefined} value  null (unlabeled), 0 or 1
 * @returns {number | null}
 */
export function cycleValue(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return 1;
  if (value === 1) return 0;
  return null;
}
