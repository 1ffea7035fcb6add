// @ts-check
// One view of the labeler: builds the elements, routes keys, clicks and trait changes to the
// controller (controller.mjs) and paints its state: the grid, the large view, the toggles, the
// status and the message. Thumbnails are fetched and cached here.

import { button, countsRows, decodeThumbnail, drawEntry, fillSelect, h } from "./dom.mjs";
import { focusWhenFirstShown, focusWhenTabShown, keepFocus, keyForControl, leaveToNotebook } from "./focus.mjs";
import { layoutGrid, paintCell } from "./grid.mjs";
import { actionForKey, helpText, keyChanges } from "./keymap.mjs";
import { LabelController, ROWS_PER_PAGE } from "./controller.mjs";
import { buildLayout } from "./layout.mjs";
import { LruCache } from "./lru.mjs";
import { classEntries, groupOptions, locate } from "./menus.mjs";
import {
  acceptText, classToggles, extractionText, paintToggles, positionText, progressText, statsText,
} from "./panel.mjs";
import { expireInflight, pageStart, planPrefetch } from "./prefetch.mjs";
import { Viewer } from "./viewer.mjs";

/**
 * @typedef {import("./types.mjs").Model} Model
 * @typedef {import("./types.mjs").Message} Message
 * @typedef {import("./dom.mjs").ImageEntry} ImageEntry
 */

const IMAGE_CACHE = 256;
const THUMB_TIMEOUT_MS = 20_000;

export class LabelerView {
  /**
   * @param {Model} model
   * @param {HTMLElement} el
   */
  constructor(model, el) {
    this.model = model;
    /** @type {LruCache<number, ImageEntry>} */
    this.images = new LruCache(IMAGE_CACHE, (_row, entry) => entry.url && URL.revokeObjectURL(entry.url));
    /** @type {Map<number, number>} row -> when its thumbnail was asked for */
    this.inflight = new Map();
    this.gridStart = -1;
    /** @type {HTMLButtonElement[]} */
    this.toggleButtons = [];
    /** @type {{classes: string[], keys: import("./keymap.mjs").KeyTable} | null} the classes and
     * keys the toggles show, to say which keys an edit moved */
    this.shown = null;
    this.ui = buildLayout(el, { thumbSize: model.get("thumb_size"), outfile: model.get("outfile"), keys: model.get("keymap") }, {
      sample: () => this.sample(),
      save: () => this.control.save(),
      toggle: (field) => this.control.run({ type: "toggle", field }),
      editClass: (action) => this.editClass(action),
      full: () => this.openViewer(),
      similar: () => this.control.similar(),
      jump: (text) => this.jump(text),
      complete: (text) => this.complete(text),
    });
    this.viewer = new Viewer({
      load: async (req) => {
        const reply = await this.control.full(req);
        return reply ? { msg: reply, buffer: reply.buffer } : null;
      },
      onClose: () => this.closeViewer(),
    });
    this.ui.main.after(this.viewer.box);
    // The large view's pixels follow its size on screen (it scales with the panel's width).
    // The grid takes as many rows as fit beside the side panel.
    this.resize = new ResizeObserver(() => {
      this.sizeCanvas();
      this.viewer.resized();
      requestAnimationFrame(() => this.fitGrid());
    });
    this.resize.observe(this.ui.canvas);
    this.resize.observe(this.ui.side);
    this.resize.observe(this.viewer.port);
    this.control = new LabelController(model, {
      onChange: () => this.paint(),
      onNote: (text, isError) => this.showMessage(text, isError),
      onEnd: () => this.showEnd(),
    });
    this.timings = this.control.timings; // for the benchmarks: patchworkViews.at(-1).timings
    this.ui.root.addEventListener("keydown", (ev) => this.onKey(ev));
    this.stopTabFocus = focusWhenTabShown(this.ui.root);
    // The app outside a notebook asks for the keyboard at once; a notebook's view waits for a click.
    this.stopFirstFocus = model.get("autofocus") ? focusWhenFirstShown(this.ui.root) : () => {};
    /** @type {[string, (...args: any[]) => void][]} */
    this.listeners = [
      ["msg:custom", (msg, buffers) => this.onMessage(msg, buffers)],
      ["change:queue", () => this.onQueue()],
      ["change:classes", () => this.onClasses()],
      ["change:counts", () => this.renderCounts()],
      ["change:stats", () => this.renderStatus()],
      ["change:subsets change:orders", () => this.renderControls()],
      ["change:sampled", () => this.showSampled()],
      ["change:revision", () => this.control.revisionChanged()],
      ["change:notices", () => this.showNotices()],
      ["change:progress", () => this.renderProgress()],
      ["change:extraction", () => this.renderExtraction()],
      ["change:groups", () => { this.gridStart = -1; this.paint(); }],
      // ipywidgets marks the model's connection dead when its kernel restarts: this view
      // then talks to nobody.
      ["comm_live_update", () => this.control.kernelGone("the notebook's kernel restarted")],
    ];
    for (const [name, fn] of this.listeners) model.on(name, fn);
    /** @type {import("./menus.mjs").Group[]} */
    this.subsetGroups = [];
    /** @type {import("./menus.mjs").Group[]} */
    this.orderGroups = [];
    this.ui.subsetSelect.addEventListener("change", () => this.renderClassMenus());
    this.ui.orderSelect.addEventListener("change", () => this.renderClassMenus());
    this.onClasses();
    this.renderCounts();
    this.renderControls();
    this.showSampled();
    this.renderProgress();
    this.renderExtraction();
    // Open views, for the console and the benchmarks.
    const global = /** @type {any} */ (globalThis);
    (global.patchworkViews ||= []).push(this);
  }

  destroy() {
    const global = /** @type {any} */ (globalThis);
    global.patchworkViews = (global.patchworkViews || []).filter((/** @type {LabelerView} */ v) => v !== this);
    for (const [name, fn] of this.listeners) this.model.off(/** @type {any} */ (name), fn);
    this.control.close();
    this.stopTabFocus();
    this.stopFirstFocus();
    this.resize.disconnect();
    this.viewer.destroy();
    this.images.clear();
  }

  // ---------------------------------------------------------------- trait changes
  onClasses() {
    // The kernel sets the key table with the classes (one update): both are new here.
    const classes = this.model.get("classes");
    const keys = this.model.get("keymap");
    const { classSelect, toggles, help, root } = this.ui;
    classSelect.replaceChildren(...classes.map((c) => Object.assign(h("option", "", c), { value: c })));
    keepFocus(root, () => {
      this.toggleButtons = classToggles(classes, keys.classes, (classIndex) => this.control.run({ type: "cycle", classIndex, click: true }));
      toggles.replaceChildren(...this.toggleButtons);
    });
    help.textContent = helpText(keys);
    // A class edit that moved keys says which: a key pressed from habit must not surprise.
    const moved = this.shown ? keyChanges(this.shown, { classes, keys }) : "";
    if (moved) {
      const said = this.ui.message.textContent;
      this.showMessage(`${said ? `${said} ` : ""}Keys changed: ${moved}.`, false);
    }
    this.shown = { classes, keys };
    this.control.classesChanged();
    this.paint();
  }

  onQueue() {
    this.control.queueChanged();
    this.gridStart = -1;
    this.paint();
  }

  /** The sample menus: subsets by kind and orders by name, each with a class menu beside it. */
  renderControls() {
    this.subsetGroups = groupOptions(this.model.get("subsets"), (s) => s.kind);
    this.orderGroups = groupOptions(this.model.get("orders"), (o) => o.name);
    fillSelect(this.ui.subsetSelect, this.subsetGroups);
    fillSelect(this.ui.orderSelect, this.orderGroups);
    this.renderClassMenus();
  }

  renderClassMenus() {
    const { subsetSelect, subsetClass, orderSelect, orderClass } = this.ui;
    for (const [select, classSelect, groups] of /** @type {const} */ ([
      [subsetSelect, subsetClass, this.subsetGroups], [orderSelect, orderClass, this.orderGroups]])) {
      const choices = classEntries(groups[Number(select.value || 0)]);
      fillSelect(classSelect, choices);
      classSelect.hidden = !choices.length;
    }
  }

  /** Show the subset and order of the current queue (the `sampled` trait), e.g. after a reload. */
  showSampled() {
    const sampled = this.model.get("sampled");
    if (!sampled?.subset || !sampled?.order) return;
    const { subsetSelect, subsetClass, orderSelect, orderClass, randomShare } = this.ui;
    const subset = locate(this.subsetGroups, sampled.subset.kind, sampled.subset.cls);
    const order = locate(this.orderGroups, sampled.order.name, sampled.order.cls);
    if (subset) subsetSelect.value = String(subset[0]);
    if (order) orderSelect.value = String(order[0]);
    this.renderClassMenus();
    if (subset) subsetClass.value = String(subset[1]);
    if (order) orderClass.value = String(order[1]);
    randomShare.value = String(sampled.order.random_fraction ?? 0);
    this.ui.countInput.value = String(sampled.count ?? this.ui.countInput.value);
  }

  renderCounts() {
    this.ui.countsTable.replaceChildren(...countsRows(this.model.get("counts")));
  }

  // ---------------------------------------------------------------- painting
  /** Paint everything that depends on the label state, then prefetch around the cursor. */
  paint() {
    const { state } = this.control;
    const { root, grid, canvas, name, position, excludeButton, validationButton } = this.ui;
    const pageSize = this.control.pageSize;
    const start = pageStart(state.cursor, pageSize);
    if (start !== this.gridStart) {
      keepFocus(root, () =>
        layoutGrid(grid, { queue: state.queue, start, pageSize, columns: this.model.get("columns"), groups: this.model.get("groups") ?? {} }, (i, ev) =>
          this.control.select(i, ev.shiftKey ? "range" : ev.ctrlKey || ev.metaKey ? "toggle" : "only"),
        ),
      );
      this.gridStart = start;
    }
    this.paintGrid();
    const row = state.row;
    drawEntry(canvas, row === undefined ? undefined : this.images.get(row));
    const values = state.current;
    name.textContent = values ? values.name : "";
    position.textContent = positionText(state.cursor, state.queue.length, row, state.selection.size);
    root.dataset.row = row === undefined ? "" : String(row);
    paintToggles(this.toggleButtons, [excludeButton, validationButton], values);
    this.ui.accept.textContent = acceptText(values, this.model.get("classes"));
    this.renderStatus();
    this.prefetch();
  }

  paintGrid() {
    const ctx = { state: this.control.state, classes: this.model.get("classes"), image: (/** @type {number} */ row) => this.images.get(row) };
    for (const cell of /** @type {HTMLCollectionOf<HTMLElement>} */ (this.ui.grid.children)) {
      if (cell.dataset.index !== undefined) paintCell(cell, ctx);
    }
  }

  renderProgress() {
    this.ui.progress.textContent = progressText(this.model.get("progress"));
  }

  /** The features a worker extracts meanwhile: a bar and "Features: N of M", or nothing. */
  renderExtraction() {
    const extraction = this.model.get("extraction") || {};
    const text = extractionText(extraction);
    this.ui.extraction.hidden = !text;
    this.ui.extraction.dataset.state = extraction.state || "idle";
    this.ui.extractionText.textContent = text;
    this.ui.extractionBar.hidden = extraction.state !== "running";
    this.ui.extractionBar.max = Math.max(1, extraction.total || 0);
    this.ui.extractionBar.value = extraction.done || 0;
  }

  /**
   * Fill the height: as many grid rows as fit beside the side panel (which is taller than
   * three rows in a wide output), three when the panel sits below the grid (narrow).
   */
  fitGrid() {
    const { main, grid, side } = this.ui;
    const cell = grid.querySelector(".pw-cell");
    if (main.hidden || !cell) return;
    let rows = ROWS_PER_PAGE;
    if (getComputedStyle(main).flexDirection !== "column") {
      const gap = parseFloat(getComputedStyle(grid).rowGap) || 0;
      const height = cell.getBoundingClientRect().height;
      if (!height) return;
      // Lines whose height changes from one image or message to the next do not count, so the
      // grid does not reflow while moving.
      const varying = [this.ui.message, this.ui.accept].reduce((sum, el) => sum + el.getBoundingClientRect().height, 0);
      rows = Math.floor((side.getBoundingClientRect().height - varying + gap) / (height + gap));
    }
    if (this.control.setRows(rows)) {
      this.gridStart = -1;
      this.paint();
    }
  }

  /** Size the large view's canvas in device pixels to its size on screen, and draw it again. */
  sizeCanvas() {
    const { canvas } = this.ui;
    const ratio = globalThis.devicePixelRatio || 1;
    const [w, hh] = [Math.round(canvas.clientWidth * ratio), Math.round(canvas.clientHeight * ratio)];
    if (!w || !hh || (w === canvas.width && hh === canvas.height)) return;
    Object.assign(canvas, { width: w, height: hh });
    const row = this.control.state.row;
    drawEntry(canvas, row === undefined ? undefined : this.images.get(row));
  }

  renderStatus() {
    const { status, pace } = this.ui;
    const { text, state } = this.control.status();
    status.textContent = text;
    status.dataset.state = state;
    this.ui.root.dataset.kernel = this.control.gone ? "gone" : "live";
    pace.textContent = statsText(this.model.get("stats") ?? {});
  }

  /** What the last class edit did to predictions and suggestions (the `notices` trait). */
  showNotices() {
    const notices = this.model.get("notices") ?? [];
    if (notices.length) this.showMessage(notices.join(" "), false);
  }

  /**
   * @param {string} text
   * @param {boolean} isError
   */
  showMessage(text, isError) {
    this.ui.message.textContent = text;
    this.ui.message.dataset.error = String(isError);
  }

  /** A move past the last image: say that the sample is done and offer the next one. */
  showEnd() {
    const n = this.control.state.queue.length;
    const count = Math.max(1, Math.floor(Number(this.ui.countInput.value) || 50));
    this.showMessage(`End of this sample: that was the last of its ${n} image${n === 1 ? "" : "s"}. `, false);
    const next = button("pw-button pw-next-sample", `Sample the next ${count}`, () => this.sample());
    next.title = "draw a new sample with the subset, order and count above";
    this.ui.message.append(next);
  }

  // ---------------------------------------------------------------- input
  /** @param {KeyboardEvent} ev */
  onKey(ev) {
    if (keyForControl(ev)) return; // typing in a box, choosing in a menu
    if (this.viewer.isOpen) {
      // The viewer has the keys while open; nothing it swallows reaches the notebook.
      if (this.viewer.key(ev)) {
        ev.preventDefault();
        ev.stopPropagation();
      }
      return;
    }
    const action = actionForKey(ev, { keys: this.model.get("keymap"), columns: this.model.get("columns") });
    if (!action) return;
    ev.preventDefault();
    ev.stopPropagation();
    const fromMenu = ev.target !== this.ui.root && Boolean(/** @type {HTMLElement} */ (ev.target).closest?.("select"));
    if (fromMenu && action.type !== "leave") this.ui.root.focus({ preventScroll: true }); // the keys label again
    if (action.type === "leave") {
      // Esc in a box or menu hands the keys back to the labeler; Esc on the labeler clears a
      // selection of several images, or else leaves.
      if (ev.target !== this.ui.root) this.ui.root.focus({ preventScroll: true });
      else if (this.control.state.clearSelection()) this.paint();
      else leaveToNotebook(this.ui.root);
    }
    else if (action.type === "move") this.move(action.delta, action.extend, ev.timeStamp);
    else if (action.type === "full") this.openViewer();
    else if (action.type === "similar") this.control.similar();
    else if (action.type === "find") this.ui.jumpInput.focus();
    else this.control.run(action, ev.timeStamp);
  }

  /** Show the current image at full resolution in place of the grid and side panel. */
  openViewer() {
    const { state } = this.control;
    if (state.row === undefined) return;
    this.control.onNote("", false);
    keepFocus(this.ui.root, () => {
      this.ui.main.hidden = true;
      this.ui.help.hidden = true; // the labeling keys wait; the viewer lists its own
      this.viewer.open(state.row, state.current?.name ?? `row ${state.row}`);
    });
    this.ui.root.focus({ preventScroll: true });
  }

  /** The viewer closed: the grid and panel again, and the keys label again. */
  closeViewer() {
    keepFocus(this.ui.root, () => {
      this.ui.main.hidden = false;
      this.ui.help.hidden = false;
    });
    this.ui.root.focus({ preventScroll: true });
    this.sizeCanvas();
  }

  /** @param {string} text */
  async jump(text) {
    if (await this.control.jump(text)) {
      this.ui.jumpInput.value = "";
      this.ui.root.focus({ preventScroll: true });
    }
  }

  /** @param {string} text */
  async complete(text) {
    const names = await this.control.complete(text);
    this.ui.jumpList.replaceChildren(...names.map((name) => Object.assign(h("option"), { value: name })));
  }

  /**
   * Move the cursor and record how long the new image took to paint.
   * @param {number} delta
   * @param {boolean} extend
   * @param {number} t0
   */
  move(delta, extend, t0) {
    this.control.onNote("", false);
    if (this.control.move(delta, extend)) {
      requestAnimationFrame(() => this.control.timings.paint.push(performance.now() - t0));
    }
  }

  sample() {
    const { subsetSelect, subsetClass, orderSelect, orderClass, randomShare, countInput } = this.ui;
    /**
     * @param {import("./menus.mjs").Group[]} groups
     * @param {HTMLSelectElement} select
     * @param {HTMLSelectElement} classSelect
     */
    const chosen = (groups, select, classSelect) =>
      groups[Number(select.value || 0)]?.entries[classSelect.hidden ? 0 : Number(classSelect.value || 0)];
    const subsetEntry = chosen(this.subsetGroups, subsetSelect, subsetClass);
    const orderEntry = chosen(this.orderGroups, orderSelect, orderClass);
    if (!subsetEntry || !orderEntry) return this.showMessage("No subset or order to sample from.", true);
    const subset = this.model.get("subsets")[subsetEntry.index];
    const order = this.model.get("orders")[orderEntry.index];
    this.control.sample(subset, order, Math.max(1, Math.floor(Number(countInput.value) || 50)),
      Number(randomShare.value) || 0);
  }

  /** @param {"add" | "rename" | "remove"} action */
  async editClass(action) {
    const { classInput, classSelect } = this.ui;
    const name = classInput.value.trim();
    const selected = classSelect.value;
    /** @type {Message} */
    let content;
    if (action === "add") content = { type: "class", action, name };
    else if (action === "rename") content = { type: "class", action, name: selected, new: name };
    else content = { type: "class", action, name: selected };
    // The name stays in the box until the kernel accepts it: a refused name can be corrected.
    if ((await this.control.editClass(content)) && action !== "remove") classInput.value = "";
  }

  /**
   * @param {Message} msg
   * @param {DataView[]} buffers
   */
  onMessage(msg, buffers) {
    if (msg.type === "thumb") this.onThumb(msg, buffers);
    else if (msg.type === "full") this.control.receive({ ...msg, buffer: buffers[0] });
    else this.control.receive(msg);
  }

  // ---------------------------------------------------------------- thumbnails
  prefetch() {
    const now = performance.now();
    expireInflight(this.inflight, now, THUMB_TIMEOUT_MS);
    const { queue, cursor } = this.control.state;
    // The whole grid page, however many rows it has, and the usual margin beyond it.
    const start = pageStart(cursor, this.control.pageSize);
    const ahead = Math.max(24, start + this.control.pageSize - 1 - cursor);
    const rows = planPrefetch(queue, cursor, this.images, this.inflight, { ahead, behind: Math.max(4, cursor - start) });
    if (!rows.length) return;
    for (const row of rows) this.inflight.set(row, now);
    this.control.rpc.notify({ type: "thumbs", rows });
  }

  /**
   * @param {Message} msg
   * @param {DataView[]} buffers
   */
  onThumb(msg, buffers) {
    decodeThumbnail(msg, buffers).then((entry) => {
      this.inflight.delete(msg.row);
      this.images.set(msg.row, entry);
      if (!this.inflight.size) this.prefetch(); // the next batch, until the page is in
      if (this.control.state.row === msg.row) this.paint();
      else this.paintGrid();
    });
  }
}
