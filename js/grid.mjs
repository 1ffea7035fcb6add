// @ts-check
// The thumbnail grid: one page of the queue around the cursor, each cell painted from the
// image cache and the row's values (caption, current, selected, pending, excluded).

import { h, summary } from "./dom.mjs";

/**
 * @typedef {import("./labels.mjs").LabelState} LabelState
 * @typedef {import("./dom.mjs").ImageEntry} ImageEntry
 * @typedef {{state: LabelState, classes: string[], image: (row: number) => ImageEntry | undefined}} PaintContext
 */

/**
 * Lay out the grid page that starts at `start`. In a near-duplicates sample each cell of a
 * group carries its group's number (`groups`: row -> number) as a badge and `data-group`;
 * the first cell of each group is marked `pw-group-start`, and groups alternate in shade.
 * @param {HTMLElement} grid
 * @param {{queue: number[], start: number, pageSize: number, columns: number,
 *   groups: Record<string, number>}} page
 * @param {(index: number, ev: MouseEvent) => void} onClick
 * @returns {HTMLElement[]} the cells, in queue order
 */
export function layoutGrid(grid, page, onClick) {
  const { queue, start, pageSize, columns, groups } = page;
  grid.style.gridTemplateColumns = `repeat(${columns}, minmax(48px, 160px))`;
  const cells = [];
  for (let i = start; i < Math.min(start + pageSize, queue.length); i++) {
    const cell = h("div", "pw-cell");
    cell.dataset.index = String(i);
    cell.dataset.row = String(queue[i]);
    cell.addEventListener("click", (ev) => onClick(i, ev));
    const group = groups[String(queue[i])];
    if (group) {
      cell.dataset.group = String(group);
      cell.classList.toggle("pw-group-start", i === 0 || groups[String(queue[i - 1])] !== group);
      cell.classList.toggle("pw-group-odd", group % 2 === 1);
    }
    // The image first and the caption last (paintCell reads them so); the badge between.
    cell.append(h("img", "pw-thumb"), ...(group ? [h("span", "pw-group", `group ${group}`)] : []), h("div", "pw-caption"));
    cells.push(cell);
  }
  if (queue.length === 0) grid.replaceChildren(h("div", "pw-empty", "No images in this sample: choose another subset."));
  else grid.replaceChildren(...cells);
  return cells;
}

/**
 * Paint one cell from the cache and the row's values.
 * @param {HTMLElement} cell
 * @param {PaintContext} ctx
 */
export function paintCell(cell, ctx) {
  const index = Number(cell.dataset.index);
  const { state } = ctx;
  const row = state.queue[index];
  if (row === undefined) return;
  const entry = ctx.image(row);
  const img = /** @type {HTMLImageElement} */ (cell.firstChild);
  if (entry && entry.url && img.src !== entry.url) img.src = entry.url;
  const values = state.values.get(row);
  const caption = /** @type {HTMLElement} */ (cell.lastChild);
  caption.textContent = values ? summary(values, ctx.classes) : "";
  cell.classList.toggle("pw-current", index === state.cursor);
  // The check mark only when several are selected: alone, the current image is the selection.
  cell.classList.toggle("pw-selected", state.selection.size > 1 && state.selection.has(index));
  cell.classList.toggle("pw-pending", state.isPending(row));
  cell.classList.toggle("pw-unreadable", Boolean(entry && entry.error));
  cell.classList.toggle("pw-excluded", Boolean(values && values.exclude));
}
