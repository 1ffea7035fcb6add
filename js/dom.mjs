// @ts-check
// DOM helpers of the labeler: elements built from text (never HTML), selects, the counts
// table and thumbnail decoding.

import { suppressShortcuts } from "./focus.mjs";

const CONTROLS = new Set(["button", "select", "input", "textarea"]);

/**
 * Create an element with a class and optional text (always as text, never as HTML).
 * Controls are marked so that no notebook shortcut fires while they have focus.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string} [className]
 * @param {string} [text]
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  if (CONTROLS.has(tag)) suppressShortcuts(node);
  return node;
}

/**
 * A button that runs `onClick`.
 * @param {string} className
 * @param {string} text
 * @param {() => void} onClick
 */
export function button(className, text, onClick) {
  const node = h("button", className, text);
  node.type = "button";
  node.addEventListener("click", onClick);
  return node;
}

/**
 * Fill a <select> with items' titles (values are indices), keeping the selected title; an
 * item's `hint` becomes its option's tooltip.
 * @param {HTMLSelectElement} select
 * @param {{title: string, hint?: string}[]} items
 */
export function fillSelect(select, items) {
  const title = select.selectedOptions[0]?.textContent;
  select.replaceChildren(...items.map((item, i) =>
    Object.assign(h("option", "", item.title), { value: String(i), title: item.hint ?? "" })));
  const keep = items.findIndex((item) => item.title === title);
  if (keep >= 0) select.value = String(keep);
}

/**
 * How a tri-state class value reads on its toggle.
 * @param {number | null | undefined} value
 */
export function valueText(value) {
  if (value === 1) return "yes";
  if (value === 0) return "no";
  return "?";
}

/**
 * Header and body rows of the counts table from the `counts` trait.
 * @param {import("./types.mjs").Counts} counts
 */
export function countsRows({ columns = [], index = [], data = [] }) {
  const head = h("tr");
  head.append(h("th", "", "class"), ...columns.map((c) => h("th", "", c)));
  const rows = index.map((name, i) => {
    const tr = h("tr");
    tr.append(h("th", "", name), ...(data[i] ?? []).map((v) => h("td", "", String(v))));
    return tr;
  });
  return [head, ...rows];
}

/**
 * @typedef {{url?: string, img?: HTMLImageElement, error?: string}} ImageEntry
 *   a decoded thumbnail (`url`, `img`) or why there is none (`error`)
 */

/**
 * A `thumb` message and its buffer -> a decoded image ready to draw, or `{error}` when the
 * kernel could not read the file or the browser cannot decode it.
 * @param {{error?: string, mime?: string, [field: string]: any}} msg
 * @param {DataView[]} buffers
 * @returns {Promise<ImageEntry>}
 */
export async function decodeThumbnail(msg, buffers) {
  if (msg.error) return { error: msg.error };
  const dv = buffers[0];
  if (!dv) return { error: "the kernel sent no image bytes" };
  const bytes = new Uint8Array(/** @type {ArrayBuffer} */ (dv.buffer), dv.byteOffset, dv.byteLength);
  const url = URL.createObjectURL(new Blob([bytes], { type: msg.mime }));
  const img = new Image();
  img.src = url;
  try {
    await img.decode();
    return { url, img };
  } catch {
    URL.revokeObjectURL(url);
    return { error: "the browser could not decode this image" };
  }
}

/**
 * Draw a cached image centred and scaled into the canvas, or the reason it is missing.
 * @param {HTMLCanvasElement} canvas
 * @param {ImageEntry | undefined} entry
 */
export function drawEntry(canvas, entry) {
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (entry && entry.img) {
    const { naturalWidth: w, naturalHeight: hh } = entry.img;
    const scale = Math.min(canvas.width / w, canvas.height / hh);
    // Smooth: a thumbnail drawn larger than it was encoded (the large view grows with the
    // output) would otherwise show blocks that are not in the image; z shows its pixels.
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = "high";
    const [dw, dh] = [w * scale, hh * scale];
    ctx.drawImage(entry.img, (canvas.width - dw) / 2, (canvas.height - dh) / 2, dw, dh);
  } else if (entry && entry.error) {
    ctx.fillStyle = getComputedStyle(canvas).getPropertyValue("--pw-error") || "#c00";
    ctx.font = "14px sans-serif";
    ctx.fillText(`unreadable: ${entry.error}`.slice(0, 60), 8, 24);
  }
}

/**
 * A grid caption: the classes marked yes (or "none"), excluded and validation.
 * @param {import("./types.mjs").RowValues} values
 * @param {string[]} classes
 */
export function summary(values, classes) {
  const yes = classes.filter((_, i) => values.labels[i] === 1);
  const parts = yes.length ? yes : values.labels.some((v) => v === 0) ? ["none"] : [];
  if (values.exclude) parts.unshift("excluded");
  if (values.validation) parts.push("(val)");
  return parts.join(", ");
}
