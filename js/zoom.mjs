// @ts-check
// The full-resolution viewer's geometry and keys, free of the DOM (unit-tested): an image of
// w x h pixels drawn at `scale` with its top-left corner at (x, y) in a viewport of vw x vh.

/**
 * @typedef {{scale: number, x: number, y: number}} View
 * @typedef {{w: number, h: number}} Size
 * @typedef {{type: "zoom", factor: number} | {type: "pan", dx: number, dy: number}
 *   | {type: "fit"} | {type: "actual"} | {type: "close"} | {type: "ignored"}} ViewerAction
 * @typedef {{keys: string[], label: string, help: string, act: () => ViewerAction}} ViewerBinding
 */

export const ZOOM_STEP = 1.25;
/** Zoom limits, as multiples of the fitted scale (out) and of the image's own pixels (in). */
export const MIN_ZOOM_OF_FIT = 0.5;
export const MAX_ZOOM = 32;
/** Share of the viewport an arrow key pans. */
export const PAN_SHARE = 0.1;

/** @type {ViewerBinding[]} the viewer's keys, in the order its help lists them */
export const VIEWER_BINDINGS = [
  { keys: ["+", "="], label: "+/−", help: "zoom (or the wheel)", act: () => ({ type: "zoom", factor: ZOOM_STEP }) },
  { keys: ["-", "_"], label: "", help: "", act: () => ({ type: "zoom", factor: 1 / ZOOM_STEP }) },
  { keys: ["ArrowLeft"], label: "arrows", help: "pan (or drag)", act: () => ({ type: "pan", dx: 1, dy: 0 }) },
  { keys: ["ArrowRight"], label: "", help: "", act: () => ({ type: "pan", dx: -1, dy: 0 }) },
  { keys: ["ArrowUp"], label: "", help: "", act: () => ({ type: "pan", dx: 0, dy: 1 }) },
  { keys: ["ArrowDown"], label: "", help: "", act: () => ({ type: "pan", dx: 0, dy: -1 }) },
  { keys: ["f"], label: "f", help: "fit", act: () => ({ type: "fit" }) },
  { keys: ["1"], label: "1", help: "one image pixel per screen pixel", act: () => ({ type: "actual" }) },
  { keys: ["Escape", "z"], label: "Esc/z", help: "close and label again", act: () => ({ type: "close" }) },
];

const VIEWER_KEYS = new Map(VIEWER_BINDINGS.flatMap((b) => b.keys.map((k) => [k, b])));

/**
 * A keydown while the viewer is open: its action, `ignored` for other single characters (no
 * notebook shortcut may fire), null for keys with modifiers and named keys it does not use.
 * @param {{key: string, ctrlKey?: boolean, metaKey?: boolean, altKey?: boolean}} ev
 * @returns {ViewerAction | null}
 */
export function viewerAction(ev) {
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return null;
  const binding = VIEWER_KEYS.get(ev.key) ?? VIEWER_KEYS.get(ev.key.toLowerCase());
  if (binding) return binding.act();
  return ev.key.length === 1 ? { type: "ignored" } : null;
}

/** The viewer's help line, from its table. */
export function viewerHelp() {
  return VIEWER_BINDINGS.filter((b) => b.label).map((b) => `${b.label} ${b.help}`).join(" · ");
}

/**
 * The whole image in the viewport, centred (never enlarged past MAX_ZOOM).
 * @param {Size} image
 * @param {Size} port
 * @returns {View}
 */
export function fit(image, port) {
  const scale = Math.min(port.w / image.w, port.h / image.h, MAX_ZOOM);
  return centre({ scale, x: 0, y: 0 }, image, port);
}

/**
 * Centre the image on each axis where it is smaller than the viewport; elsewhere keep it
 * covering the viewport (no empty band beside an image larger than the view).
 * @param {View} view
 * @param {Size} image
 * @param {Size} port
 * @returns {View}
 */
export function centre(view, image, port) {
  /** @param {number} pos @param {number} size @param {number} room */
  const place = (pos, size, room) => (size <= room ? (room - size) / 2 : Math.min(0, Math.max(room - size, pos)));
  return { scale: view.scale, x: place(view.x, image.w * view.scale, port.w), y: place(view.y, image.h * view.scale, port.h) };
}

/**
 * Zoom by `factor` keeping the image point under (px, py) where it is.
 * @param {View} view
 * @param {number} factor
 * @param {number} px
 * @param {number} py
 * @param {Size} image
 * @param {Size} port
 * @returns {View}
 */
export function zoomAt(view, factor, px, py, image, port) {
  const lowest = Math.min(fit(image, port).scale * MIN_ZOOM_OF_FIT, 1);
  const scale = Math.min(MAX_ZOOM, Math.max(lowest, view.scale * factor));
  const k = scale / view.scale;
  return centre({ scale, x: px - (px - view.x) * k, y: py - (py - view.y) * k }, image, port);
}

/**
 * Move the image by (dx, dy) screen pixels, within what `centre` allows.
 * @param {View} view
 * @param {number} dx
 * @param {number} dy
 * @param {Size} image
 * @param {Size} port
 * @returns {View}
 */
export function pan(view, dx, dy, image, port) {
  return centre({ scale: view.scale, x: view.x + dx, y: view.y + dy }, image, port);
}

/**
 * The stretch choices of the viewer: title and percentiles (null: the session's default).
 * @type {{title: string, value: [number, number] | null}[]}
 */
export const STRETCHES = [
  { title: "stretch: as thumbnails", value: null },
  { title: "stretch: min–max", value: [0, 100] },
  { title: "stretch: 0.5–99.5%", value: [0.5, 99.5] },
  { title: "stretch: 2–98%", value: [2, 98] },
  { title: "stretch: 5–95%", value: [5, 95] },
];

/**
 * Parse the bands box: "" (the session's default) or one or three band numbers.
 * @param {string} text  e.g. "3, 2, 1" or "4"
 * @returns {number[] | null}
 */
export function parseBands(text) {
  const parts = text.split(/[\s,]+/).filter(Boolean);
  if (!parts.length) return null;
  const bands = parts.map(Number);
  if (!(bands.length === 1 || bands.length === 3) || !bands.every((b) => Number.isInteger(b) && b >= 0)) {
    throw new RangeError(`bands: one or three band numbers from 0, e.g. "3,2,1"; got "${text}"`);
  }
  return bands;
}
