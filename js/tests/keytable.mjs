// @ts-check
// The kernel's default key table for the JS tests: keytable.json is what
// patchwork_widget.widget.keys.resolve_keys gives 40 classes (tests/unit/test_keys.py checks
// that the file still matches), so these tests never hold a second copy of the defaults.
import { readFileSync } from "node:fs";

/** @type {import("../keymap.mjs").KeyTable} */
export const KERNEL_TABLE = JSON.parse(readFileSync(new URL("./keytable.json", import.meta.url), "utf8"));

/**
 * The default table for the first `n` classes (default class keys follow the class order, so
 * a prefix of the 40-class table is the table of fewer classes).
 * @param {number} n
 * @returns {import("../keymap.mjs").KeyTable}
 */
export function defaultKeys(n) {
  if (n > KERNEL_TABLE.classes.length) throw new RangeError(`keytable.json holds ${KERNEL_TABLE.classes.length} classes, not ${n}`);
  return { actions: KERNEL_TABLE.actions, classes: KERNEL_TABLE.classes.slice(0, n) };
}
