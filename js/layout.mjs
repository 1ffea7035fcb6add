// @ts-check
// The labeler's elements: the sampling bar, the grid, the side panel (large view, class
// toggles, flags, message), the help line, the class editor and the counts table.

import { button, h } from "./dom.mjs";
import { holdKeyboard } from "./focus.mjs";
import { flagKey } from "./keymap.mjs";
import { RANDOM_SHARES } from "./menus.mjs";

/**
 * @typedef {{
 *   sample: () => void, save: () => void,
 *   toggle: (field: "exclude" | "validation") => void,
 *   editClass: (action: "add" | "rename" | "remove") => void,
 *   full: () => void, similar: () => void, jump: (text: string) => void, complete: (text: string) => void,
 * }} LayoutActions
 * @typedef {ReturnType<typeof buildLayout>} Layout
 */

/**
 * Build the labeler inside `el`.
 * @param {HTMLElement} el
 * @param {{thumbSize: number[], outfile: string, keys: import("./keymap.mjs").KeyTable}} opts  `keys`: the key table
 * @param {LayoutActions} on
 */
export function buildLayout(el, opts, on) {
  const root = h("div", "pw-root");
  holdKeyboard(root);

  const subsetSelect = h("select", "pw-subset");
  subsetSelect.title = "which images to sample from";
  const subsetClass = h("select", "pw-subset-class");
  subsetClass.title = "the class of this subset";
  const orderSelect = h("select", "pw-order");
  orderSelect.title = "sampling order";
  const orderClass = h("select", "pw-order-class");
  orderClass.title = "the class this order ranks by";
  const randomShare = h("select", "pw-random-share");
  randomShare.title = "share of the sample drawn at random instead (exploration)";
  randomShare.replaceChildren(...RANDOM_SHARES.map((share) =>
    Object.assign(h("option", "", share ? `+${Math.round(share * 100)}% random` : "no random"), { value: String(share) })));
  const countInput = h("input", "pw-count");
  Object.assign(countInput, { type: "number", min: "1", value: "50", title: "how many (Enter samples)" });
  countInput.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") {
      ev.preventDefault();
      on.sample();
      root.focus({ preventScroll: true }); // the keys label again (a digit must not extend the count)
    }
  });
  const sample = button("pw-button pw-sample", "Sample", on.sample);
  const save = button("pw-button pw-save", "Save", on.save);
  save.title = `write the table to ${opts.outfile}`;
  const status = h("span", "pw-status");
  status.dataset.state = "saved";
  const pace = h("span", "pw-pace");
  const bar = h("div", "pw-bar");
  bar.append(subsetSelect, subsetClass, orderSelect, orderClass, randomShare, countInput, sample, save,
    status, pace);

  const grid = h("div", "pw-grid");
  // The large view scales with the side panel's width; view.mjs sizes its pixels to match.
  const canvas = h("canvas", "pw-big");
  const [height, width] = opts.thumbSize;
  Object.assign(canvas, { width, height });
  canvas.style.aspectRatio = `${width} / ${height}`;
  canvas.title = "click (or press z) for the full-resolution image";
  canvas.addEventListener("click", on.full);
  const side = h("div", "pw-side");
  const name = h("div", "pw-name");
  const position = h("div", "pw-position");
  const progress = h("div", "pw-progress");
  // The features a worker process extracts meanwhile (hidden when there is no extraction).
  const extraction = h("div", "pw-extraction");
  const extractionBar = /** @type {HTMLProgressElement} */ (h("progress", "pw-extraction-bar"));
  const extractionText = h("span", "pw-extraction-text");
  extraction.append(extractionBar, extractionText);
  extraction.hidden = true;
  const toggles = h("div", "pw-toggles");
  const accept = h("div", "pw-accept");
  const excludeButton = flagButton("exclude", flagKey(opts.keys, "exclude"), on.toggle);
  const validationButton = flagButton("validation", flagKey(opts.keys, "validation"), on.toggle);
  const flags = h("div", "pw-flags");
  flags.append(excludeButton, validationButton);
  const jump = jumpBox(on.jump, on.complete);
  const tools = h("div", "pw-tools");
  tools.append(
    button("pw-button pw-open-full", "z full size", on.full),
    button("pw-button pw-similar", "n more like this", on.similar),
    jump.input, jump.list,
  );
  const message = h("div", "pw-message");
  message.setAttribute("role", "status");
  side.append(canvas, name, position, progress, extraction, toggles, accept, flags, tools, message);
  const main = h("div", "pw-main");
  main.append(grid, side);

  const help = h("div", "pw-help");
  const editor = classEditor(on.editClass);
  const countsTable = h("table", "pw-counts");
  const countsBox = h("div", "pw-counts-box"); // scrolls sideways on its own when narrow
  countsBox.append(countsTable);
  const narrow = h("div", "pw-narrow", "Too narrow to label: widen the output (close the side bar).");
  narrow.title = "the labeler needs about 300 px; it shows again as soon as it has them";
  root.append(narrow, bar, main, help, editor.box, countsBox);
  el.append(root);
  return {
    root, subsetSelect, subsetClass, orderSelect, orderClass, randomShare, countInput, save, status,
    pace, main, side, grid, canvas, name, position, progress, extraction, extractionBar,
    extractionText, accept,
    toggles, excludeButton, validationButton, message, help, countsTable,
    jumpInput: jump.input, jumpList: jump.list,
    classSelect: editor.select, classInput: editor.input,
  };
}

/**
 * An exclude / validation flag; its key is shown on it.
 * @param {"exclude" | "validation"} field
 * @param {string} key
 * @param {(field: "exclude" | "validation") => void} onToggle
 */
function flagButton(field, key, onToggle) {
  const node = button(`pw-flag pw-flag-${field}`, "", () => onToggle(field));
  node.dataset.key = key;
  node.dataset.field = field;
  return node;
}

let jumpBoxes = 0; // each view's completion list needs an id of its own

/**
 * The box that jumps to an image by file name: completions as one types (from the kernel),
 * Enter jumps.
 * @param {(text: string) => void} onJump
 * @param {(text: string) => void} onType
 */
function jumpBox(onJump, onType) {
  const input = h("input", "pw-jump");
  const list = h("datalist", "pw-jump-list");
  list.id = `pw-jump-list-${++jumpBoxes}-${Math.random().toString(36).slice(2, 6)}`;
  input.setAttribute("list", list.id);
  Object.assign(input, { type: "search", placeholder: "/ jump to file…", title: "a file name or part of one; Enter jumps to it" });
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    const text = input.value.trim();
    if (text.length >= 2) timer = setTimeout(() => onType(text), 200);
  });
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && input.value.trim()) {
      ev.preventDefault();
      clearTimeout(timer);
      onJump(input.value.trim());
    }
  });
  return { input, list };
}

/**
 * Add / rename / remove classes; removing asks for a second click.
 * @param {(action: "add" | "rename" | "remove") => void} onEdit
 */
function classEditor(onEdit) {
  const select = h("select", "pw-class-select");
  const input = h("input", "pw-class-name");
  input.placeholder = "class name";
  const remove = button("pw-button pw-remove", "Remove", () => {
    if (remove.dataset.armed) {
      delete remove.dataset.armed;
      remove.textContent = "Remove";
      onEdit("remove");
    } else {
      remove.dataset.armed = "1";
      remove.textContent = "Really remove?";
    }
  });
  const box = h("div", "pw-classes");
  box.append(
    select,
    button("pw-button pw-rename", "Rename to", () => onEdit("rename")),
    input,
    button("pw-button pw-add", "Add class", () => onEdit("add")),
    remove,
  );
  return { box, select, input };
}
