// The labeler: an anywidget view. It holds view state only (cursor, selection, cached
// images); every label goes to the kernel as a small message and is shown as saved only
// once the kernel acknowledges that it is durable.
import { HELP, classEditor, countsRows, decodeThumbnail, drawEntry, fillSelect, h, summary, valueText } from "./dom.mjs";
import { actionForKey, cycleValue } from "./keymap.mjs";
import { LruCache } from "./lru.mjs";
import { planPrefetch, pageStart } from "./prefetch.mjs";
import "./widget.css";

const ROWS_PER_PAGE = 3;
const IMAGE_CACHE = 256;
const LABEL_CHUNK = 1000;

class LabelerView {
  constructor(model, el) {
    this.model = model;
    this.el = el;
    this.cursor = 0;
    this.selection = new Set([0]);
    this.values = new Map(); // row -> {labels, exclude, validation, suggest, name}
    this.pending = new Map(); // row -> outstanding requests
    this.inflight = new Set(); // rows whose thumbnails are on their way
    this.waiting = new Map(); // request id -> {t0, kind}
    this.viewId = Math.random().toString(36).slice(2, 8); // replies reach every view
    this.nextId = 1;
    this.markTime = performance.now();
    this.images = new LruCache(IMAGE_CACHE, (_row, entry) => URL.revokeObjectURL(entry.url));
    this.timings = { paint: [], ack: [], labels: [] }; // milliseconds, read by benchmarks
    this.build();
    this.listeners = [
      ["msg:custom", (msg, buffers) => this.onMessage(msg, buffers)],
      ["change:queue", () => this.onQueue()],
      ["change:classes", () => this.onClasses()],
      ["change:counts", () => this.renderCounts()],
      ["change:stats", () => this.renderStatus()],
      ["change:subsets change:orders", () => this.renderControls()],
      ["change:revision", () => this.requestLabels()], // new predictions: fresh suggestions
    ];
    for (const [name, fn] of this.listeners) model.on(name, fn);
    this.onClasses();
    this.renderCounts();
    this.renderControls();
    // Open views, for the console and the benchmarks: patchworkViews.at(-1).timings
    (globalThis.patchworkViews ||= []).push(this);
  }

  destroy() {
    globalThis.patchworkViews = globalThis.patchworkViews.filter((v) => v !== this);
    for (const [name, fn] of this.listeners) this.model.off(name, fn);
    this.images.clear();
  }

  // ---------------------------------------------------------------- layout
  build() {
    const root = h("div", "pw-root");
    root.tabIndex = 0;
    // Notebook 7 runs its shortcuts before our handler sees the key; this attribute stops that.
    root.setAttribute("data-lm-suppress-shortcuts", "true");
    root.addEventListener("keydown", (ev) => this.onKey(ev));
    // Focus for the keyboard on a click, without scrolling (a scroll between mousedown and
    // mouseup would move the target away and lose the click); controls keep their own focus.
    root.addEventListener("mousedown", (ev) => {
      if (!ev.target.closest("select, input, button")) root.focus({ preventScroll: true });
    });
    this.root = root;

    const bar = h("div", "pw-bar");
    this.subsetSelect = h("select", "pw-subset");
    this.subsetSelect.title = "which images to sample from";
    this.orderSelect = h("select", "pw-order");
    this.orderSelect.title = "sampling order";
    this.countInput = h("input", "pw-count");
    Object.assign(this.countInput, { type: "number", min: "1", value: "50", title: "how many" });
    const sample = h("button", "pw-button pw-sample", "Sample");
    sample.addEventListener("click", () => this.sample());
    const save = h("button", "pw-button pw-save", "Save");
    save.title = `write the table to ${this.model.get("outfile")}`;
    save.addEventListener("click", () => this.request({ type: "save" }));
    this.status = h("span", "pw-status");
    this.pace = h("span", "pw-pace");
    bar.append(this.subsetSelect, this.orderSelect, this.countInput, sample, save, this.status, this.pace);

    const main = h("div", "pw-main");
    this.grid = h("div", "pw-grid");
    const side = h("div", "pw-side");
    this.canvas = h("canvas", "pw-big");
    const [height, width] = this.model.get("thumb_size");
    Object.assign(this.canvas, { width, height });
    side.style.width = `${Math.max(width, 240)}px`;
    this.name = h("div", "pw-name");
    this.position = h("div", "pw-position");
    this.toggles = h("div", "pw-toggles");
    this.flags = h("div", "pw-flags");
    this.excludeButton = this.flagButton("exclude", "x");
    this.validationButton = this.flagButton("validation", "v");
    this.flags.append(this.excludeButton, this.validationButton);
    this.message = h("div", "pw-message");
    side.append(this.canvas, this.name, this.position, this.toggles, this.flags, this.message);
    main.append(this.grid, side);

    const help = h("div", "pw-help", HELP);
    this.countsTable = h("table", "pw-counts");
    const editor = classEditor((action) => this.editClass(action));
    [this.classSelect, this.classInput] = [editor.select, editor.input];
    root.append(bar, main, help, editor.box, this.countsTable);
    this.el.append(root);
  }

  flagButton(field, key) {
    const button = h("button", `pw-flag pw-flag-${field}`);
    button.addEventListener("click", () => this.run({ type: "toggle", field }));
    button.dataset.key = key;
    return button;
  }

  // ---------------------------------------------------------------- rendering
  get queue() {
    return this.model.get("queue");
  }

  get pageSize() {
    return this.model.get("columns") * ROWS_PER_PAGE;
  }

  renderControls() {
    fillSelect(this.subsetSelect, this.model.get("subsets"));
    fillSelect(this.orderSelect, this.model.get("orders"));
  }

  onClasses() {
    const classes = this.model.get("classes");
    this.classSelect.replaceChildren(...classes.map((c) => Object.assign(h("option", "", c), { value: c })));
    this.toggleButtons = classes.map((name, i) => {
      const button = h("button", "pw-toggle");
      button.addEventListener("click", () => this.run({ type: "cycle", classIndex: i }));
      const key = h("span", "pw-key", i < 9 ? String(i + 1) : "");
      const label = h("span", "pw-class", name);
      const state = h("span", "pw-state");
      const suggest = h("span", "pw-suggest");
      button.append(key, label, state, suggest);
      return button;
    });
    this.toggles.replaceChildren(...this.toggleButtons);
    this.values.clear();
    this.requestLabels();
    this.showCurrent();
  }

  onQueue() {
    this.cursor = 0;
    this.selection = new Set([0]);
    this.values.clear();
    this.requestLabels();
    this.renderGrid();
    this.showCurrent();
  }

  renderGrid() {
    const queue = this.queue;
    const start = pageStart(this.cursor, this.pageSize);
    this.gridStart = start;
    this.grid.style.gridTemplateColumns = `repeat(${this.model.get("columns")}, minmax(48px, 160px))`;
    const cells = [];
    for (let i = start; i < Math.min(start + this.pageSize, queue.length); i++) {
      const cell = h("div", "pw-cell");
      cell.dataset.index = String(i);
      cell.addEventListener("click", (ev) => this.clickCell(i, ev));
      cell.append(h("img", "pw-thumb"), h("div", "pw-caption"));
      cells.push(cell);
    }
    if (queue.length === 0) cells.push(h("div", "pw-empty", "No images in this sample: choose another subset."));
    this.grid.replaceChildren(...cells);
    for (const cell of cells) this.paintCell(cell);
  }

  paintCell(cell) {
    if (!cell.dataset.index) return;
    const index = Number(cell.dataset.index);
    const row = this.queue[index];
    const entry = this.images.get(row);
    const img = cell.firstChild;
    if (entry && entry.url && img.src !== entry.url) img.src = entry.url;
    const values = this.values.get(row);
    const caption = cell.lastChild;
    caption.textContent = values ? summary(values, this.model.get("classes")) : "";
    cell.classList.toggle("pw-current", index === this.cursor);
    cell.classList.toggle("pw-selected", this.selection.has(index));
    cell.classList.toggle("pw-pending", (this.pending.get(row) || 0) > 0);
    cell.classList.toggle("pw-unreadable", Boolean(entry && entry.error));
    cell.classList.toggle("pw-excluded", Boolean(values && values.exclude));
  }

  paintGrid() {
    for (const cell of this.grid.children) this.paintCell(cell);
  }

  showCurrent() {
    const queue = this.queue;
    if (pageStart(this.cursor, this.pageSize) !== this.gridStart) this.renderGrid();
    else this.paintGrid();
    const row = queue[this.cursor];
    drawEntry(this.canvas, this.images.get(row));
    const values = row === undefined ? undefined : this.values.get(row);
    this.name.textContent = values ? values.name : "";
    const extra = this.selection.size > 1 ? ` · ${this.selection.size} selected` : "";
    this.position.textContent = row === undefined ? "" : `${this.cursor + 1} / ${queue.length} · row ${row}${extra}`;
    this.renderToggles(values);
    this.prefetch();
  }

  renderToggles(values) {
    const classes = this.model.get("classes");
    classes.forEach((_, i) => {
      const button = this.toggleButtons[i];
      const value = values ? values.labels[i] : null;
      button.dataset.value = value === null ? "unset" : String(value);
      button.children[2].textContent = valueText(value);
      const p = values && values.suggest ? values.suggest[i] : null;
      button.children[3].textContent = p === null ? "" : `model ${p.toFixed(2)}`;
    });
    for (const [button, field] of [
      [this.excludeButton, "exclude"],
      [this.validationButton, "validation"],
    ]) {
      const on = Boolean(values && values[field]);
      button.dataset.on = String(on);
      button.textContent = `${button.dataset.key} ${field}: ${on ? "yes" : "no"}`;
    }
  }

  renderCounts() {
    this.countsTable.replaceChildren(...countsRows(this.model.get("counts")));
  }

  renderStatus() {
    let waiting = 0;
    for (const n of this.pending.values()) waiting += n;
    this.status.textContent = waiting ? `saving ${waiting}…` : "all saved";
    this.status.dataset.state = waiting ? "pending" : "saved";
    const stats = this.model.get("stats") || {};
    const lpm = stats.labels_per_minute;
    this.pace.textContent = lpm ? `${lpm.toFixed(1)} labels/min` : "";
  }

  showMessage(text, isError) {
    this.message.textContent = text;
    this.message.dataset.error = String(Boolean(isError));
  }

  // ---------------------------------------------------------------- input
  onKey(ev) {
    const action = actionForKey(ev, { nClasses: this.model.get("classes").length, columns: this.model.get("columns") });
    if (!action) return;
    ev.preventDefault();
    ev.stopPropagation();
    this.run(action, ev.timeStamp);
  }

  clickCell(index, ev) {
    if (ev.shiftKey || ev.ctrlKey || ev.metaKey) {
      if (this.selection.has(index) && this.selection.size > 1) this.selection.delete(index);
      else this.selection.add(index);
      this.cursor = index;
    } else {
      this.cursor = index;
      this.selection = new Set([index]);
    }
    this.showCurrent();
  }

  run(action, t0 = performance.now()) {
    if (action.type !== "ignored") this.showMessage("", false); // a new action clears the last note
    const queue = this.queue;
    const row = queue[this.cursor];
    const values = this.values.get(row);
    switch (action.type) {
      case "move":
        return this.move(action.delta, action.extend, t0);
      case "leave":
        this.root.blur();
        return;
      case "undo":
        return this.request({ type: "undo" }, t0);
      case "ignored":
        return;
      default:
        break;
    }
    if (row === undefined || !values) return;
    const rows = [...this.selection].map((i) => queue[i]).filter((r) => r !== undefined);
    if (action.type === "cycle") {
      const name = this.model.get("classes")[action.classIndex];
      this.annotate(rows, { [name]: cycleValue(values.labels[action.classIndex]) }, t0);
    } else if (action.type === "toggle") {
      this.annotate(rows, { [action.field]: !values[action.field] }, t0);
    } else if (action.type === "rest-negative") {
      const classes = this.model.get("classes");
      for (const r of rows) {
        const v = this.values.get(r);
        if (!v) continue;
        const changes = {};
        classes.forEach((c, i) => {
          if (v.labels[i] === null) changes[c] = 0;
        });
        if (Object.keys(changes).length) this.annotate([r], changes, t0);
      }
      this.move(1, false, t0);
    } else if (action.type === "accept") {
      if (!values.suggest) return this.showMessage("No model predictions yet.", true);
      this.request({ type: "accept", row, seconds: this.seconds() }, t0);
    }
  }

  move(delta, extend, t0) {
    const queue = this.queue;
    if (!queue.length) return;
    const next = Math.min(queue.length - 1, Math.max(0, this.cursor + delta));
    if (extend) this.selection.add(next);
    else this.selection = new Set([next]);
    this.cursor = next;
    this.markTime = performance.now();
    this.showCurrent();
    requestAnimationFrame(() => this.timings.paint.push(performance.now() - t0));
  }

  seconds() {
    const now = performance.now();
    const s = (now - this.markTime) / 1000;
    this.markTime = now;
    return Math.min(s, 3600);
  }

  // ---------------------------------------------------------------- kernel traffic
  request(content, t0 = performance.now()) {
    const id = `${this.viewId}:${this.nextId++}`;
    this.waiting.set(id, { t0, kind: content.type, rows: content.rows || [] });
    this.model.send({ ...content, id });
    return id;
  }

  annotate(rows, changes, t0) {
    const classes = this.model.get("classes");
    for (const row of rows) {
      const v = this.values.get(row);
      if (v) {
        for (const [field, value] of Object.entries(changes)) {
          const i = classes.indexOf(field);
          if (i >= 0) v.labels[i] = value;
          else v[field] = value;
        }
      }
      this.pending.set(row, (this.pending.get(row) || 0) + 1);
    }
    this.request({ type: "annotate", rows, changes, seconds: this.seconds() }, t0);
    this.showCurrent();
    this.renderStatus();
  }

  sample() {
    const subset = this.model.get("subsets")[Number(this.subsetSelect.value || 0)];
    const order = this.model.get("orders")[Number(this.orderSelect.value || 0)];
    const count = Math.max(1, Math.floor(Number(this.countInput.value) || 50));
    this.request({
      type: "sample",
      subset: { kind: subset.kind, cls: subset.cls },
      order: { name: order.name, cls: order.cls },
      count,
    });
  }

  editClass(action) {
    const name = this.classInput.value.trim();
    const selected = this.classSelect.value;
    if (action === "add") this.request({ type: "class", action, name });
    else if (action === "rename") this.request({ type: "class", action, name: selected, new: name });
    else this.request({ type: "class", action, name: selected });
    this.classInput.value = "";
  }

  requestLabels() {
    const queue = this.queue;
    for (let i = 0; i < queue.length; i += LABEL_CHUNK) {
      this.request({ type: "labels", rows: queue.slice(i, i + LABEL_CHUNK) });
    }
  }

  prefetch() {
    const rows = planPrefetch(this.queue, this.cursor, this.images, this.inflight);
    if (!rows.length) return;
    for (const row of rows) this.inflight.add(row);
    this.model.send({ type: "thumbs", rows, id: `${this.viewId}:${this.nextId++}` });
  }

  onMessage(msg, buffers) {
    if (msg.type === "thumb") return this.onThumb(msg, buffers);
    const sent = this.waiting.get(msg.id);
    this.waiting.delete(msg.id);
    if (msg.type === "labels" || msg.type === "ack") {
      for (const v of msg.rows) this.values.set(v.row, v);
    }
    if (sent && this.timings[msg.type]) this.timings[msg.type].push(performance.now() - sent.t0);
    if (msg.type === "ack" && sent) {
      this.settle(sent.rows);
      if (sent.kind === "undo") this.showMessage("Undone.", false);
    } else if (msg.type === "error") {
      this.showMessage(msg.message, true);
      if (sent) {
        this.settle(sent.rows);
        if (sent.rows.length) this.request({ type: "labels", rows: sent.rows });
      }
    } else if (msg.type === "saved") {
      this.showMessage(`Saved to ${msg.path}`, false);
    }
    if (msg.type === "labels" || msg.type === "ack" || msg.type === "error") {
      this.showCurrent();
      this.renderStatus();
    }
  }

  settle(rows) {
    for (const row of rows) {
      const n = (this.pending.get(row) || 1) - 1;
      if (n > 0) this.pending.set(row, n);
      else this.pending.delete(row);
    }
  }

  onThumb(msg, buffers) {
    decodeThumbnail(msg, buffers).then((entry) => {
      this.inflight.delete(msg.row);
      this.images.set(msg.row, entry);
      this.repaint(msg.row);
    });
  }

  repaint(row) {
    if (this.queue[this.cursor] === row) this.showCurrent();
    else this.paintGrid();
  }
}

function render({ model, el }) {
  const view = new LabelerView(model, el);
  return () => view.destroy();
}

export default { render };
