// Keyboard map of the labeler: a pure function from a keydown to an action.
// Kept free of the DOM so it can be unit-tested with node's test runner.

/**
 * Translate a keydown into a labeling action.
 *
 * @param {{key: string, shiftKey?: boolean, ctrlKey?: boolean, metaKey?: boolean, altKey?: boolean}} ev
 * @param {{nClasses: number, columns: number}} ctx  number of class toggles and grid columns
 * @returns {object|null} an action, or null when the key is not ours (let it through)
 */
export function actionForKey(ev, ctx) {
  const { key } = ev;
  const mod = ev.ctrlKey || ev.metaKey;
  if (ev.altKey) return null;
  if (mod) {
    if (key === "z" || key === "Z") return { type: "undo" };
    return null; // leave copy/paste and browser shortcuts alone
  }
  const extend = Boolean(ev.shiftKey);
  switch (key) {
    case "ArrowLeft":
      return { type: "move", delta: -1, extend };
    case "ArrowRight":
      return { type: "move", delta: 1, extend };
    case "ArrowUp":
      return { type: "move", delta: -Math.max(1, ctx.columns), extend };
    case "ArrowDown":
      return { type: "move", delta: Math.max(1, ctx.columns), extend };
    case "Enter":
    case " ":
      return { type: "move", delta: 1, extend: false };
    case "Escape":
      return { type: "leave" };
    case "x":
    case "X":
      return { type: "toggle", field: "exclude" };
    case "v":
    case "V":
      return { type: "toggle", field: "validation" };
    case "0":
      return { type: "rest-negative" };
    case "u":
    case "U":
      return { type: "undo" };
    case "a":
    case "A":
      return { type: "accept" };
    default:
      break;
  }
  if (key.length === 1 && key >= "1" && key <= "9") {
    const classIndex = Number(key) - 1;
    return classIndex < ctx.nClasses ? { type: "cycle", classIndex } : { type: "ignored" };
  }
  return null;
}

/**
 * Next value of a tri-state class toggle: unlabeled -> 1 -> 0 -> unlabeled.
 * Positive first, since "this image shows C" is the label a user reaches for.
 *
 * @param {number|null} value  null (unlabeled), 0 or 1
 * @returns {number|null}
 */
export function cycleValue(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return 1;
  if (value === 1) return 0;
  return null;
}
