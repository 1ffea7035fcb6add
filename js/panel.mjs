// @ts-check
// The side panel's labels: one toggle per class (its name, key, value and the model's
// suggestion), the exclude / validation flags, and the current image's name and position.

import { button, h, valueText } from "./dom.mjs";

/**
 * @typedef {import("./types.mjs").RowValues} RowValues
 */

/**
 * A model probability, with the digits that keep it on the right side of a threshold:
 * 0.097 reads "0.097" (not "0.10", which looked like it missed the "no" threshold of 0.1).
 * @param {number} p
 * @returns {string}
 */
export function probabilityText(p) {
  if (p < 0.001) return "<0.001";
  if (p > 0.999) return ">0.999";
  return p.toFixed(3);
}

/**
 * What a toggle shows of the model's output for an unset class: the value a press of `a`
 * would write (`write`: 1, 0, or null when `a` leaves the class) and the probability.
 * @param {number | null | undefined} p
 * @param {string} strength  `solid` (written by `a`), `faint` (left) or `none`
 * @returns {{write: number | null, text: string, prob: string, title: string}}
 */
export function suggestionView(p, strength) {
  if (p === null || p === undefined) return { write: null, text: "", prob: "", title: "" };
  const prob = `p ${probabilityText(p)}`;
  if (strength !== "solid") {
    const title = strength === "faint" ? `model p = ${p}: too uncertain, a leaves this class as it is` : "";
    return { write: null, text: "", prob, title };
  }
  const write = p >= 0.5 ? 1 : 0;
  return { write, text: `a → ${valueText(write)}`, prob, title: `model p = ${p}: a press of a writes ${valueText(write)}` };
}

/**
 * One toggle per class. Each carries `data-class` (its name) and `data-key` (the
 * `KeyboardEvent.key` that cycles it; absent for a class without a key).
 * @param {string[]} classes
 * @param {(string | null)[]} classKeys  the key of each class, from the key table
 * @param {(classIndex: number) => void} onCycle
 * @returns {HTMLButtonElement[]}
 */
export function classToggles(classes, classKeys, onCycle) {
  return classes.map((name, i) => {
    const key = classKeys[i] ?? null;
    const toggle = button("pw-toggle", "", () => onCycle(i));
    toggle.dataset.class = name;
    if (key !== null) toggle.dataset.key = key;
    toggle.title = key === null ? `${name}: no key, click to cycle` : `${name}: press ${key} to cycle`;
    toggle.append(h("span", "pw-key", key ?? ""), h("span", "pw-class", name), h("span", "pw-state"), suggestBox());
    return toggle;
  });
}

/** The model's output beside a toggle: what `a` would write, then the probability, small. */
function suggestBox() {
  const box = h("span", "pw-suggest");
  box.append(h("span", "pw-suggest-write"), h("span", "pw-suggest-p"));
  return box;
}

/**
 * Show a row's values on the toggles and flags (all unset when the values are unknown).
 * @param {HTMLButtonElement[]} toggles
 * @param {HTMLButtonElement[]} flags  the exclude and validation buttons (`data-field`)
 * @param {RowValues | undefined} values
 */
export function paintToggles(toggles, flags, values) {
  toggles.forEach((toggle, i) => {
    const value = values ? values.labels[i] ?? null : null;
    toggle.dataset.value = value === null ? "unset" : String(value);
    toggle.children[2].textContent = valueText(value);
    const p = values && values.suggest ? values.suggest[i] : null;
    const suggest = /** @type {HTMLElement} */ (toggle.children[3]);
    const strength = (values && values.strength && values.strength[i]) || "none";
    const shown = suggestionView(p, strength);
    suggest.children[0].textContent = shown.text;
    suggest.children[1].textContent = shown.prob;
    suggest.dataset.strength = strength;
    suggest.dataset.write = shown.write === null ? "" : String(shown.write);
    suggest.title = shown.title;
  });
  for (const flag of flags) {
    const field = /** @type {"exclude" | "validation"} */ (flag.dataset.field);
    const on = Boolean(values && values[field]);
    flag.dataset.on = String(on);
    flag.textContent = `${flag.dataset.key} ${field}: ${on ? "yes" : "no"}`;
  }
}

/**
 * The current image's position line: "3 / 50 · row 812 · 2 selected".
 * @param {number} cursor
 * @param {number} length
 * @param {number | undefined} row
 * @param {number} selected
 */
export function positionText(cursor, length, row, selected) {
  if (row === undefined) return "";
  const extra = selected > 1 ? ` · ${selected} selected` : "";
  return `${cursor + 1} / ${length} · row ${row}${extra}`;
}

/**
 * The status line's second half: pace, whether the outfile has caught up with the journal,
 * and how many images ago the online loop last updated the model (images, as people count).
 * @param {import("./types.mjs").Stats} stats
 * @returns {string}
 */
export function statsText(stats) {
  const parts = [];
  if (stats.images_per_minute) parts.push(`${stats.images_per_minute.toFixed(1)} images/min`);
  const exported = stats.export;
  if (exported?.state === "pending") parts.push("outfile updating");
  if (exported?.state === "failed") parts.push(`outfile not written: ${exported.error}`);
  const online = stats.online;
  if (online && online.state !== "off") {
    const updated = online.rounds
      ? `model updated ${online.images_since_update} image${online.images_since_update === 1 ? "" : "s"} ago`
      : "first model training";
    parts.push(`online ${online.state === "running" ? "" : `(${online.state}) `}· ${updated}`);
  }
  return parts.join(" · ");
}

/**
 * The progress line: "Labeled: 3 of 50 in this sample · 130 of 5,000 in all" (a row is
 * labeled when every class has a value, or it is excluded).
 * @param {import("./types.mjs").Progress | undefined} progress
 * @returns {string}
 */
export function progressText(progress) {
  if (!progress?.all) return "";
  const n = (/** @type {number} */ v) => v.toLocaleString("en-US");
  const parts = [];
  if (progress.queue?.total) parts.push(`${n(progress.queue.labeled)} of ${n(progress.queue.total)} in this sample`);
  parts.push(`${n(progress.all.labeled)} of ${n(progress.all.total)} in all`);
  return `Labeled: ${parts.join(" · ")}`;
}

/**
 * The feature extraction line: "Features: 1,200 of 2,000 (mobilenet_v3_small) · orders on
 * features once done" while a worker extracts them, the error when it failed, empty otherwise
 * (no extraction, or every row has its features).
 * @param {import("./types.mjs").Extraction | undefined} extraction
 * @returns {string}
 */
export function extractionText(extraction) {
  const n = (/** @type {number} */ v) => v.toLocaleString("en-US");
  if (extraction?.state === "failed") return `Feature extraction failed: ${extraction.error || "unknown error"}`;
  if (extraction?.state !== "running") return "";
  const of = `${n(extraction.done ?? 0)} of ${n(extraction.total ?? 0)}`;
  const by = extraction.description ? ` (${extraction.description})` : "";
  return `Features: ${of}${by} · orders on features once done`;
}

/**
 * What one press of `a` would write for a row: "a: writes yes cat, no dog; leaves bird
 * (faint)". A `solid` suggestion is written (yes above one half, no below), a `faint` one left
 * alone; empty when the row has no suggestions.
 * @param {RowValues | undefined} values
 * @param {string[]} classes
 * @returns {string}
 */
export function acceptText(values, classes) {
  if (!values || !values.suggest || !values.strength) return "";
  /** @type {string[]} */
  const writes = [];
  /** @type {string[]} */
  const leaves = [];
  classes.forEach((name, i) => {
    const p = values.suggest?.[i];
    const strength = values.strength?.[i];
    if (p === null || p === undefined) return;
    if (strength === "solid") writes.push(`${p >= 0.5 ? "yes" : "no"} ${name}`);
    else if (strength === "faint") leaves.push(name);
  });
  if (!writes.length && !leaves.length) return "a: nothing to accept (every class with a prediction is labeled)";
  const said = writes.length ? `writes ${writes.join(", ")}` : "writes nothing";
  return `a: ${said}${leaves.length ? `; leaves ${leaves.join(", ")} (faint)` : ""}`;
}

/**
 * What an undo says: "Undone: img_3.png (row 12) is back to cat ?, dog no." (or, for an edit
 * of several images, their count and first names).
 * @param {RowValues[]} rows  the kernel's values of the rows the undo changed
 * @param {string[]} classes
 * @param {number} inQueue  how many of them are in the queue (the view moved to them)
 * @returns {string}
 */
export function undoneText(rows, classes, inQueue) {
  const where = inQueue ? "" : " (not in this sample)";
  if (rows.length === 1) {
    const [v] = rows;
    const labels = classes.map((c, i) => `${c} ${valueText(v.labels[i] ?? null)}`);
    const flags = [v.exclude && "excluded", v.validation && "validation"].filter(Boolean);
    return `Undone: ${v.name} (row ${v.row})${where} is back to ${[...labels, ...flags].join(", ")}.`;
  }
  const names = rows.slice(0, 3).map((v) => v.name).join(", ");
  return `Undone on ${rows.length} images${where}: ${names}${rows.length > 3 ? ", …" : ""}.`;
}
