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
 * }} LayoutActions
 * @typedef {ReturnType<typeof buildLayout>} Layout
 */

/**
 * Build the labeler inside `el`.
 * @param {HTMLElement} el
 * @param {{thumbSize: number[], outfile: string}} opts
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
  const canvas = h("canvas", "pw-big");
  const [height, width] = opts.thumbSize;
  Object.assign(canvas, { width, height });
  const side = h("div", "pw-side");
  side.style.setProperty("--pw-side-width", `${Math.max(width, 240)}px`);
  const name = h("div", "pw-name");
  const position = h("div", "pw-position");
  const toggles = h("div", "pw-toggles");
  const excludeButton = flagButton("exclude", on.toggle);
  const validationButton = flagButton("validation", on.toggle);
  const flags = h("div", "pw-flags");
  flags.append(excludeButton, validationButton);
  const message = h("div", "pw-message");
  message.setAttribute("role", "status");
  side.append(canvas, name, position, toggles, flags, message);
  const main = h("div", "pw-main");
  main.append(grid, side);

  const help = h("div", "pw-help");
  const editor = classEditor(on.editClass);
  const countsTable = h("table", "pw-counts");
  const countsBox = h("div", "pw-counts-box"); // scrolls sideways on its own when narrow
  countsBox.append(countsTable);
  root.append(bar, main, help, editor.box, countsBox);
  el.append(root);
  return {
    root, subsetSelect, subsetClass, orderSelect, orderClass, randomShare, countInput, save, status,
    pace, grid, canvas, name, position,
    toggles, excludeButton, validationButton, message, help, countsTable,
    classSelect: editor.select, classInput: editor.input,
  };
}

/**
 * An exclude / validation flag; its key is shown on it.
 * @param {"exclude" | "validation"} field
 * @param {(field: "exclude" | "validation") => void} onToggle
 */
function flagButton(field, onToggle) {
  const node = button(`pw-flag pw-flag-${field}`, "", () => onToggle(field));
  node.dataset.key = flagKey(field);
  node.dataset.field = field;
  return node;
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
