// @ts-check
// Two short menus instead of one long one: the sample controls group the kernel's subset and
// order options by kind (subsets) or name (orders), and a second menu picks the class for the
// per-class ones. Pure: the view fills <select> elements from these groups.

/**
 * An option as the kernel lists it: `key` is the subset kind or order name, `cls` its class;
 * `hint` what it is for (an order's `purpose`, e.g. "find positives of cat"), shown as a tooltip.
 * @typedef {{key: string, cls: string | null, title: string, index: number, hint?: string}} Entry
 * @typedef {{key: string, title: string, entries: Entry[], hint?: string}} Group
 */

/** The class menu's entry for an order offered both for all classes and per class. */
export const ALL_CLASSES = "all classes";

/** Shares of random picks offered beside the order (`OrderChoice.random_fraction`). */
export const RANDOM_SHARES = Object.freeze([0, 0.1, 0.2, 0.5]);

/**
 * Group options by their key, in the kernel's order; a group's title is its entries' common
 * title without the class (e.g. "contains" for "contains: cat"), and its hint the first entry's
 * purpose without the class (e.g. "find positives").
 * @param {{title: string, cls: string | null, purpose?: string}[]} options
 * @param {(option: any) => string} keyOf
 * @returns {Group[]}
 */
export function groupOptions(options, keyOf) {
  /** @type {Map<string, Group>} */
  const groups = new Map();
  options.forEach((option, index) => {
    const key = keyOf(option);
    const entry = { key, cls: option.cls, title: option.title, index, hint: option.purpose };
    const group = groups.get(key);
    if (group) group.entries.push(entry);
    else groups.set(key, { key, title: baseTitle(option), entries: [entry], hint: basePurpose(option) });
  });
  return [...groups.values()];
}

/**
 * @param {{title: string, cls: string | null}} option
 * @returns {string}
 */
function baseTitle(option) {
  const suffix = option.cls === null ? "" : `: ${option.cls}`;
  return suffix && option.title.endsWith(suffix) ? option.title.slice(0, -suffix.length) : option.title;
}

/**
 * @param {{cls: string | null, purpose?: string}} option
 * @returns {string | undefined}
 */
function basePurpose(option) {
  const suffix = option.cls === null ? "" : ` of ${option.cls}`;
  const purpose = option.purpose;
  return purpose && suffix && purpose.endsWith(suffix) ? purpose.slice(0, -suffix.length) : purpose;
}

/**
 * The class menu of a group, each class with its hint (e.g. "find positives of cat"): empty
 * when the group is about no class.
 * @param {Group | undefined} group
 * @returns {{title: string, hint?: string}[]}
 */
export function classEntries(group) {
  if (!group || (group.entries.length === 1 && group.entries[0].cls === null)) return [];
  return group.entries.map((e) => ({ title: e.cls === null ? ALL_CLASSES : e.cls, hint: e.hint }));
}

/**
 * Where an option (by its key and class) sits in the groups: [group index, class index], or
 * null when no group holds it.
 * @param {Group[]} groups
 * @param {string} key
 * @param {string | null} cls
 * @returns {[number, number] | null}
 */
export function locate(groups, key, cls) {
  const g = groups.findIndex((group) => group.key === key);
  if (g < 0) return null;
  const c = groups[g].entries.findIndex((e) => e.cls === cls);
  return c < 0 ? null : [g, c];
}
