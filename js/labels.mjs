// @ts-check
// The labeler's view state, free of the DOM: the queue, cursor and selection, the values the
// kernel reported for rows near the cursor, and the edits still waiting for an acknowledgement.
// Every rule about which rows an action touches lives here (unit-tested without a browser).

import { cycleValue } from "./keymap.mjs";

/**
 * @typedef {import("./types.mjs").RowValues} RowValues
 * @typedef {import("./types.mjs").Changes} Changes
 * @typedef {import("./keymap.mjs").Action} Action
 * @typedef {{rows: number[], changes: Changes}} Edit  one `annotate` request
 */

/**
 * How a click on a grid image changes the selection: `only` (a plain click), `toggle`
 * (Ctrl / Cmd: add or remove it) or `range` (Shift: every image from the anchor to it).
 * @typedef {"only" | "toggle" | "range"} SelectMode
 */

/** Rows around the cursor whose values are fetched: behind and ahead of it. */
export const LABEL_WINDOW = { behind: 50, ahead: 200 };

export class LabelState {
  constructor() {
    /** @type {number[]} row numbers in display order */
    this.queue = [];
    this.cursor = 0;
    /** @type {Set<number>} indices into the queue */
    this.selection = new Set([0]);
    /** Where a Shift-click range starts: the last image moved to or clicked without Shift. */
    this.anchor = 0;
    /** @type {Map<number, RowValues>} row -> values the kernel reported */
    this.values = new Map();
    /** @type {Set<number>} rows whose values are current (since the last `invalidate`) */
    this.fresh = new Set();
    /** @type {Set<number>} rows whose values have been asked for and not yet received */
    this.requested = new Set();
    /** @type {string[]} class names, in the order of each row's `labels` */
    this.classes = [];
    /** @type {(string | null)[]} the key of each class (null: none), from the key table */
    this.classKeys = [];
    /** @type {Map<number, Changes[]>} row -> changes sent and not yet acknowledged, in order */
    this.pending = new Map();
    /** @type {Set<number>} rows whose edit got no acknowledgement in time, until re-read */
    this.unconfirmed = new Set();
    /** @type {Set<number>} classes (by index) changed or held by a key since the cursor arrived */
    this.visited = new Set();
  }

  /** The cursor arrived on an image (or moved off it and back): a new visit begins. */
  arrive() {
    this.visited.clear();
  }

  /**
   * A new queue. When it keeps the rows up to the cursor (online re-ranking changes only the
   * rows after it), the cursor stays, and the selection up to it. When it keeps an earlier
   * part only (the kernel re-ranked from where it last heard the cursor was, and the view had
   * moved on since), the cursor follows the current image to its new place, or, if it was
   * dropped, goes to the first re-ranked image. Otherwise (a new sample) the cursor goes to the
   * first image. Values of rows are kept: they are still true.
   * @param {number[]} queue
   * @returns {boolean} whether the cursor stayed on the same image
   */
  setQueue(queue) {
    const old = this.queue;
    const row = old[this.cursor];
    const n = this.cursor + 1;
    this.queue = queue;
    if (old.length > 0 && n <= queue.length && old.slice(0, n).every((r, i) => queue[i] === r)) {
      this.selection = new Set([...this.selection].filter((i) => i <= this.cursor));
      return true;
    }
    this.arrive();
    let kept = 0; // how many rows at the start are unchanged
    while (kept < Math.min(old.length, queue.length) && old[kept] === queue[kept]) kept++;
    const moved = kept > 0 ? queue.indexOf(row) : -1;
    this.cursor = moved >= 0 ? moved : Math.min(kept, Math.max(queue.length - 1, 0));
    this.selection = new Set([this.cursor]);
    return moved >= 0;
  }

  /** Back to the first image (a sample this view asked for). */
  restart() {
    this.startAt(0);
  }

  /**
   * Put the cursor on queue position `index` (clamped to the queue), alone in the selection:
   * where a view that renders again starts (the kernel's `cursor` trait).
   * @param {number} index
   */
  startAt(index) {
    const last = Math.max(this.queue.length - 1, 0);
    this.cursor = Number.isInteger(index) ? Math.min(Math.max(index, 0), last) : 0;
    this.selection = new Set([this.cursor]);
    this.anchor = this.cursor;
    this.arrive();
  }

  /** A new class list: every row's label array is stale. */
  setClasses(/** @type {string[]} */ classes, /** @type {(string | null)[]} */ classKeys) {
    this.classes = classes;
    this.classKeys = classKeys;
    this.values.clear();
    this.fresh.clear();
    this.requested.clear();
  }

  /** New predictions: values stay on screen, but are fetched again near the cursor. */
  invalidate() {
    this.fresh.clear();
  }

  /** The current row, or undefined for an empty queue. */
  get row() {
    return this.queue[this.cursor];
  }

  /** Values of the current row, if known. */
  get current() {
    const row = this.row;
    return row === undefined ? undefined : this.values.get(row);
  }

  /**
   * Put the cursor on the first of `indices` (queue positions) and select them all: where an
   * undo shows the images it changed.
   * @param {number[]} indices
   */
  showIndices(indices) {
    const valid = indices.filter((i) => i >= 0 && i < this.queue.length).sort((a, b) => a - b);
    if (!valid.length) return;
    if (valid[0] !== this.cursor) this.arrive();
    this.cursor = valid[0];
    this.anchor = valid[0];
    this.selection = new Set(valid);
  }

  /**
   * Esc with several images selected: only the current one stays selected.
   * @returns {boolean} whether there was a selection to clear
   */
  clearSelection() {
    if (this.selection.size <= 1) return false;
    this.selection = new Set([this.cursor]);
    this.anchor = this.cursor;
    return true;
  }

  /** Rows of the selection, in queue order. */
  selectedRows() {
    return [...this.selection].sort((a, b) => a - b).map((i) => this.queue[i]).filter((r) => r !== undefined);
  }

  /**
   * Move the cursor by `delta` (clamped to the queue); `extend` adds to the selection.
   * @returns {boolean} whether there was anywhere to move
   */
  move(/** @type {number} */ delta, extend = false) {
    if (!this.queue.length) return false;
    const next = Math.min(this.queue.length - 1, Math.max(0, this.cursor + delta));
    if (extend) this.selection.add(next);
    else {
      this.selection = new Set([next]);
      this.anchor = next;
    }
    if (next !== this.cursor) this.arrive();
    this.cursor = next;
    return true;
  }

  /**
   * A click on the image at `index`: it becomes the current image, and the selection follows
   * `mode` (a range runs from the anchor, which a Shift-click leaves in place).
   * @param {number} index
   * @param {SelectMode} [mode]
   */
  select(index, mode = "only") {
    if (!(index >= 0 && index < this.queue.length)) return;
    if (mode === "range") {
      const [a, b] = [Math.min(this.anchor, index), Math.max(this.anchor, index)];
      this.selection = new Set(Array.from({ length: b - a + 1 }, (_, i) => a + i));
    } else if (mode === "toggle") {
      if (this.selection.has(index) && this.selection.size > 1) this.selection.delete(index);
      else this.selection.add(index);
      this.anchor = index;
    } else {
      this.selection = new Set([index]);
      this.anchor = index;
    }
    if (index !== this.cursor) this.arrive();
    this.cursor = index;
  }

  /**
   * The rule that keeps a re-pressed key from flipping a label given earlier: the first press
   * of a class key on a class that already had a value when the cursor arrived on the image
   * changes nothing and says so; later presses within the same visit cycle as usual. (After a
   * page reload, or back on an image labeled yesterday, a habitual `1` would otherwise turn
   * yes into no.) A click on a toggle is deliberate and always cycles.
   * @param {number} classIndex
   * @returns {string | null} why the press was held back, or null when it cycles
   */
  holdCycle(classIndex) {
    const current = this.current;
    if (!current) return null; // values not known yet: the press writes nothing anyway
    const value = current.labels[classIndex];
    const held = value !== null && value !== undefined && !this.visited.has(classIndex);
    this.visited.add(classIndex);
    if (!held) return null;
    const name = this.classes[classIndex];
    const key = this.classKeys[classIndex];
    return `${name} is already ${value === 1 ? "yes" : "no"}: press ${key} again to change it.`;
  }

  /**
   * Values from a `labels` or `ack` reply. Edits of the row still on their way are applied on
   * top: the kernel answers in order, so a reply may predate them (without this, a fast `8`
   * then `0` read the reply to the key before `8` and set the class to "no").
   */
  receive(/** @type {RowValues[]} */ rows) {
    for (const v of rows) {
      for (const changes of this.pending.get(v.row) ?? []) this.change(v, changes);
      this.values.set(v.row, v);
      this.fresh.add(v.row);
      this.requested.delete(v.row);
      this.unconfirmed.delete(v.row);
    }
  }

  /**
   * Rows to ask the kernel for: when a row near the cursor lacks current values, every row of
   * the window around the cursor that lacks them (so requests come in batches, not one per
   * move). Marks them requested; `forget` them if the request fails.
   * @param {number} pageSize  images on one grid page (all of them get captions)
   * @returns {number[]}
   */
  wanted(pageSize) {
    const behind = Math.max(LABEL_WINDOW.behind, pageSize);
    const ahead = Math.max(LABEL_WINDOW.ahead, 2 * pageSize);
    const missing = (/** @type {number} */ i) => {
      const row = this.queue[i];
      return row !== undefined && !this.fresh.has(row) && !this.requested.has(row);
    };
    let near = false;
    for (let i = this.cursor - Math.floor(behind / 2); i <= this.cursor + Math.floor(ahead / 2) && !near; i++) near = missing(i);
    if (!near) return [];
    const rows = new Set();
    for (let i = Math.max(0, this.cursor - behind); i <= Math.min(this.queue.length - 1, this.cursor + ahead); i++) {
      if (missing(i)) rows.add(this.queue[i]);
    }
    for (const row of rows) this.requested.add(row);
    return [...rows];
  }

  /** A values request failed or timed out: its rows may be asked for again. */
  forget(/** @type {number[]} */ rows) {
    for (const row of rows) this.requested.delete(row);
  }

  /**
   * The `annotate` requests an action makes, computed from the current row's values (the
   * selection gets the same change). Empty when the action writes nothing or the current
   * row's values are not known yet.
   * @param {Action} action
   * @returns {Edit[]}
   */
  edits(action) {
    const { classes } = this;
    const current = this.current;
    const rows = this.selectedRows();
    if (!current || !rows.length) return [];
    if (action.type === "cycle") {
      const name = classes[action.classIndex];
      if (name === undefined) return [];
      return [{ rows, changes: { [name]: cycleValue(current.labels[action.classIndex]) } }];
    }
    if (action.type === "toggle") return [{ rows, changes: { [action.field]: !current[action.field] } }];
    if (action.type === "rest-negative") return this.restNegative(rows);
    return [];
  }

  /**
   * `0`: every class still unset becomes "no", on each selected row, but only classes the
   * user can reach with a key (a class without a key is never set by accident). Rows with
   * the same changes share one request.
   * @param {number[]} rows
   * @returns {Edit[]}
   */
  restNegative(rows) {
    const { classes } = this;
    /** @type {Map<string, Edit>} */
    const groups = new Map();
    for (const row of rows) {
      const v = this.values.get(row);
      if (!v) continue;
      /** @type {Changes} */
      const changes = {};
      for (const [i, name] of classes.entries()) {
        const unset = v.labels[i] === null || v.labels[i] === undefined;
        if (unset && this.classKeys[i] != null) changes[name] = 0;
      }
      if (!Object.keys(changes).length) continue;
      const key = JSON.stringify(changes);
      const group = groups.get(key);
      if (group) group.rows.push(row);
      else groups.set(key, { rows: [row], changes });
    }
    return [...groups.values()];
  }

  /** Show an edit at once (as pending) before the kernel acknowledges it. */
  applyOptimistic(/** @type {Edit} */ edit) {
    for (const row of edit.rows) {
      const v = this.values.get(row);
      if (v) this.change(v, edit.changes);
      this.pending.set(row, [...(this.pending.get(row) ?? []), edit.changes]);
    }
  }

  /**
   * Write changes into a row's values.
   * @param {RowValues} values
   * @param {Changes} changes
   */
  change(values, changes) {
    for (const [field, value] of Object.entries(changes)) {
      const i = this.classes.indexOf(field);
      if (i >= 0) values.labels[i] = /** @type {number | null} */ (value);
      else if (field === "exclude" || field === "validation") values[field] = Boolean(value);
    }
  }

  /** An edit was acknowledged (or refused, or timed out): it is no longer pending. */
  settle(/** @type {Edit} */ edit) {
    for (const row of edit.rows) {
      const left = (this.pending.get(row) ?? []).filter((changes) => changes !== edit.changes);
      if (left.length) this.pending.set(row, left);
      else this.pending.delete(row);
    }
  }

  /** Whether a row has edits waiting for an acknowledgement. */
  isPending(/** @type {number} */ row) {
    return this.pending.has(row);
  }

  /** Edits still waiting for an acknowledgement. */
  get pendingCount() {
    let n = 0;
    for (const list of this.pending.values()) n += list.length;
    return n;
  }
}
