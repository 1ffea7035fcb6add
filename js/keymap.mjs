// @ts-check
// The labeler's keyboard: one table that both turns a keydown into an action and writes the
// help text, so the keys a user reads are the keys that work. Free of the DOM (unit-tested
// with node's test runner).

/**
 * @typedef {{type: "move", delta: number, extend: boolean}
 *   | {type: "cycle", classIndex: number, click?: boolean}
 *   | {type: "toggle", field: "exclude" | "validation"}
 *   | {type: "rest-negative"} | {type: "accept", next?: boolean} | {type: "undo"} | {type: "leave"}
 *   | {type: "full"} | {type: "similar"} | {type: "find"}
 *   | {type: "ignored", key: string}} Action
 * @typedef {{key: string, shiftKey?: boolean, ctrlKey?: boolean, metaKey?: boolean, altKey?: boolean}} KeyLike
 * @typedef {{nClasses: number, columns: number}} KeyContext
 * @typedef {{keys: string[], ctrlKeys?: string[], label: string, help: string,
 *   act: (ev: KeyLike, ctx: KeyContext) => Action}} Binding  `ctrlKeys` work with Ctrl or Cmd
 */

/** @type {Binding[]} Every fixed binding, in the order the help lists them. */
export const BINDINGS = [
  {
    keys: ["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown"],
    label: "arrows",
    help: "move (shift extends the selection)",
    act: (ev, ctx) => {
      const row = Math.max(1, ctx.columns);
      const delta = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -row, ArrowDown: row }[ev.key] ?? 0;
      return { type: "move", delta, extend: Boolean(ev.shiftKey) };
    },
  },
  { keys: ["0"], label: "0", help: "classes still ? are no, then next", act: () => ({ type: "rest-negative" }) },
  { keys: ["x"], label: "x", help: "exclude", act: () => ({ type: "toggle", field: "exclude" }) },
  { keys: ["v"], label: "v", help: "validation", act: () => ({ type: "toggle", field: "validation" }) },
  { keys: ["a"], label: "a", help: "accept suggestions", act: () => ({ type: "accept" }) },
  { keys: ["A"], label: "Shift+A", help: "accept, then next", act: () => ({ type: "accept", next: true }) },
  { keys: ["u"], ctrlKeys: ["z"], label: "u/Ctrl+Z", help: "undo", act: () => ({ type: "undo" }) },
  { keys: ["z"], label: "z", help: "full resolution (zoom, pan; Esc closes)", act: () => ({ type: "full" }) },
  { keys: ["n"], label: "n", help: "more like this (nearest neighbours)", act: () => ({ type: "similar" }) },
  { keys: ["/"], label: "/", help: "jump to a file by name", act: () => ({ type: "find" }) },
  { keys: ["Enter", " "], label: "Enter/Space", help: "next", act: () => ({ type: "move", delta: 1, extend: false }) },
  { keys: ["Escape"], label: "Esc", help: "leave the widget", act: () => ({ type: "leave" }) },
];

const FIXED = new Map(BINDINGS.flatMap((b) => b.keys.map((k) => [k, b])));
const WITH_CTRL = new Map(BINDINGS.flatMap((b) => (b.ctrlKeys ?? []).map((k) => [k, b])));

/** Letters that cycle classes past the ninth: a-z in order, less those bound above. */
export const CLASS_LETTERS = [..."abcdefghijklmnopqrstuvwxyz"].filter((c) => !FIXED.has(c));

/** How many classes have a key: 1-9, then CLASS_LETTERS. */
export const MAX_KEYED_CLASSES = 9 + CLASS_LETTERS.length;

/**
 * The `KeyboardEvent.key` that cycles class `index`, or null past MAX_KEYED_CLASSES.
 * @param {number} index
 * @returns {string | null}
 */
export function classKey(index) {
  if (!Number.isInteger(index) || index < 0) throw new RangeError(`class index must be an integer >= 0, got ${index}`);
  if (index < 9) return String(index + 1);
  return CLASS_LETTERS[index - 9] ?? null;
}

/**
 * Index of the class a key cycles, or -1 when the key names no class.
 * @param {string} key
 * @returns {number}
 */
function classIndexOf(key) {
  if (key.length !== 1) return -1;
  if (key >= "1" && key <= "9") return Number(key) - 1;
  const letter = CLASS_LETTERS.indexOf(key.toLowerCase());
  return letter < 0 ? -1 : 9 + letter;
}

/**
 * The key of the exclude or validation toggle, from the table.
 * @param {"exclude" | "validation"} field
 * @returns {string}
 */
export function flagKey(field) {
  const ctx = { nClasses: 0, columns: 1 };
  const binding = BINDINGS.find((b) => {
    const action = b.act({ key: b.keys[0] }, ctx);
    return action.type === "toggle" && action.field === field;
  });
  if (!binding) throw new Error(`no key toggles ${field}`);
  return binding.keys[0];
}

/**
 * Translate a keydown into a labeling action.
 *
 * Single characters that name no action are swallowed (`ignored`): while the widget has the
 * keyboard, a notebook shortcut must never fire by accident. Modified keys other than
 * the `ctrlKeys` of the table pass through (copy, paste, browser shortcuts), and so do Tab and function keys.
 *
 * @param {KeyLike} ev
 * @param {KeyContext} ctx  number of classes and grid columns
 * @returns {Action | null} an action, or null when the key is not ours (let it through)
 */
export function actionForKey(ev, ctx) {
  const { key } = ev;
  if (ev.altKey) return null;
  if (ev.ctrlKey || ev.metaKey) {
    const binding = WITH_CTRL.get(key.toLowerCase());
    return binding ? binding.act(ev, ctx) : null;
  }
  const binding = FIXED.get(key) ?? FIXED.get(key.toLowerCase());
  if (binding) return binding.act(ev, ctx);
  const classIndex = classIndexOf(key);
  if (classIndex >= 0 && classIndex < ctx.nClasses) return { type: "cycle", classIndex };
  return key.length === 1 ? { type: "ignored", key } : null;
}

/**
 * Classes whose key a class edit changed (keys follow the class order, so removing a class
 * moves every later one): "owl 3 → 2, moss none → d". Empty when no kept class changed key.
 * @param {string[]} before  the class list before the edit
 * @param {string[]} after
 * @returns {string}
 */
export function keyChanges(before, after) {
  const changed = [];
  for (const [i, name] of after.entries()) {
    const was = before.indexOf(name);
    if (was < 0) continue; // a new class (or a new name): its key is shown on its toggle
    const [oldKey, newKey] = [classKey(was), classKey(i)];
    if (oldKey !== newKey) changed.push(`${name} ${oldKey ?? "none"} → ${newKey ?? "none"}`);
  }
  return changed.join(", ");
}

/**
 * The keys of the class toggles, compactly: "1-9, then b c d" for 12 classes.
 * @param {number} nClasses
 * @returns {string}
 */
export function classKeysText(nClasses) {
  const keys = [];
  for (let i = 0; i < Math.min(nClasses, MAX_KEYED_CLASSES); i++) keys.push(/** @type {string} */ (classKey(i)));
  if (!keys.length) return "";
  const digits = keys.slice(0, 9);
  const letters = keys.slice(9);
  const span = (/** @type {string[]} */ ks) => (ks.length > 2 ? `${ks[0]}-${ks.at(-1)}` : ks.join(", "));
  return letters.length ? `${span(digits)}, then ${letters.join(" ")}` : span(digits);
}

/**
 * The help line, written from the same table that handles the keys.
 * @param {number} nClasses
 * @returns {string}
 */
export function helpText(nClasses) {
  const parts = [];
  const keyed = classKeysText(nClasses);
  if (keyed) parts.push(`${keyed} cycle a class (? → yes → no)`);
  if (nClasses > MAX_KEYED_CLASSES) parts.push(`classes past the first ${MAX_KEYED_CLASSES}: click their toggle`);
  for (const b of BINDINGS) parts.push(`${b.label} ${b.help}`);
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
