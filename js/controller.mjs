// @ts-check
// What the labeler does, without the DOM: turns actions into requests, keeps the label state
// in step with the kernel's replies, and says what to show (status and message). The view
// (view.mjs) paints it; the unit tests drive it with a fake widget model.

import { LabelState } from "./labels.mjs";
import { undoneText } from "./panel.mjs";
import { RequestError, Rpc } from "./rpc.mjs";

/**
 * @typedef {import("./types.mjs").Model} Model
 * @typedef {import("./types.mjs").Message} Message
 * @typedef {import("./types.mjs").RowValues} RowValues
 * @typedef {import("./keymap.mjs").Action} Action
 * @typedef {import("./labels.mjs").Edit} Edit
 * @typedef {{paint: number[], ack: number[], labels: number[]}} Timings
 * @typedef {{
 *   rpc?: Rpc,
 *   now?: () => number,
 *   onChange?: () => void,
 *   onNote?: (text: string, isError: boolean) => void,
 *   onEnd?: () => void,
 * }} ControllerOptions
 */

/** Grid rows of a page at least (the view shows more when the side panel beside it is taller). */
export const ROWS_PER_PAGE = 3;
/** Grid rows of a page at most. */
export const MAX_ROWS_PER_PAGE = 8;

/** Rows per `labels` request at most (the kernel's limit). */
export const LABEL_CHUNK = 1000;

/** Actions that write the current image's values, so need them known first. */
const EDITS = new Set(["cycle", "toggle", "rest-negative", "accept"]);

export class LabelController {
  /**
   * @param {Model} model
   * @param {ControllerOptions} [options]  `onChange`: state changed, repaint; `onNote`: a message;
   *   `onEnd`: a move forward from the last image of the queue (the end of the sample)
   */
  constructor(model, options = {}) {
    this.model = model;
    this.rpc = options.rpc ?? new Rpc((content) => model.send(content));
    this.now = options.now ?? (() => performance.now());
    this.onChange = options.onChange ?? (() => {});
    this.onEnd = options.onEnd ?? (() => {});
    const onNote = options.onNote ?? (() => {});
    // Once the kernel is gone, the message line keeps saying so until something else is said.
    this.onNote = (/** @type {string} */ text, /** @type {boolean} */ isError) =>
      (this.gone && !text ? onNote(this.goneText(), true) : onNote(text, isError));
    this.state = new LabelState();
    this.rows = ROWS_PER_PAGE;
    /** @type {string | null} why this view no longer reaches a kernel (null while it does) */
    this.gone = null;
    this.rpc.onUnreachable = (err) => this.kernelGone(`the widget could not send to it (${err})`);
    this.state.setQueue(model.get("queue"));
    this.state.startAt(model.get("cursor") ?? 0); // where the kernel last heard this view was
    /** @type {Timings} milliseconds, read by the benchmarks */
    this.timings = { paint: [], ack: [], labels: [] };
    this.markTime = this.now();
  }

  get classes() {
    return this.model.get("classes");
  }

  get pageSize() {
    return this.model.get("columns") * this.rows;
  }

  /**
   * Set how many grid rows a page has (the view fits them to the space it has).
   * @param {number} rows
   * @returns {boolean} whether it changed
   */
  setRows(rows) {
    const n = Math.min(MAX_ROWS_PER_PAGE, Math.max(ROWS_PER_PAGE, Math.floor(rows) || ROWS_PER_PAGE));
    if (n === this.rows) return false;
    this.rows = n;
    this.fetchLabels();
    return true;
  }

  /**
   * What the status line says: `saved`, `pending` (edits not yet acknowledged), `unconfirmed`,
   * or `gone` (the kernel restarted or stopped: what was not acknowledged was not saved).
   */
  status() {
    const waiting = this.state.pendingCount;
    const unconfirmed = this.state.unconfirmed.size;
    if (this.gone) {
      const lost = new Set([...this.state.pending.keys(), ...this.state.unconfirmed]).size;
      return { text: lost ? `kernel gone · ${lost} not saved` : "kernel gone", state: "gone" };
    }
    if (waiting) return { text: `saving ${waiting}…`, state: "pending" };
    if (unconfirmed) return { text: `${unconfirmed} not confirmed`, state: "unconfirmed" };
    return { text: "all saved", state: "saved" };
  }

  /**
   * The kernel behind this view restarted or stopped. Nothing is saved any more: edits still
   * waiting stay on screen as not saved (never "saved"), keys that would write are refused,
   * and the message says so, and that the model and predictions went with the kernel.
   * @param {string} why
   */
  kernelGone(why) {
    if (this.gone) return;
    this.gone = why;
    this.rpc.close(); // no reply can come: nothing waits for one, no timer settles an edit
    this.onNote(this.goneText(), true);
    this.onChange();
  }

  goneText() {
    return `The kernel is gone (restarted or stopped: ${this.gone}). Nothing is saved from this view `
      + "any more, and the model and its predictions are gone with the kernel. Labels acknowledged "
      + "before are in the journal: run the widget's cell again to go on.";
  }

  // ---------------------------------------------------------------- trait changes
  classesChanged() {
    this.state.setClasses(this.classes, this.model.get("keymap").classes);
    this.fetchLabels();
  }

  /** A new queue: a new sample (cursor to the start) or re-ranked after the cursor (it stays). */
  queueChanged() {
    this.state.setQueue(this.model.get("queue"));
    this.fetchLabels();
  }

  /** New predictions or scores (`revision`): fetch fresh suggestions near the cursor only. */
  revisionChanged() {
    this.state.invalidate();
    this.fetchLabels();
  }

  // ---------------------------------------------------------------- actions
  /**
   * Carry out an action (from a key or a click).
   * @param {Action} action
   * @param {number} [t0]  when the key was pressed, for the timings
   */
  run(action, t0 = this.now()) {
    if (action.type === "ignored") return;
    if (this.gone && action.type !== "move" && action.type !== "leave") {
      this.onNote(`Not saved: ${this.goneText()}`, true);
      return;
    }
    this.onNote("", false); // a new action clears the last note
    if (EDITS.has(action.type) && this.state.row !== undefined && !this.state.current) {
      // the image's values are being fetched (a new queue, a class edit): a press now would
      // write nothing, so say so instead of dropping it in silence
      this.onNote("This image's labels are still loading: press the key again in a moment.", false);
      return;
    }
    switch (action.type) {
      case "move":
        this.move(action.delta, action.extend);
        return;
      case "undo":
        this.undo(t0);
        return;
      case "accept":
        this.accept(t0, Boolean(action.next));
        return;
      case "leave": // where focus goes is the view's business
        return;
      case "cycle": {
        const held = action.click ? null : this.state.holdCycle(action.classIndex);
        if (held) {
          this.onNote(held, false);
          return;
        }
        break;
      }
      default:
        break;
    }
    for (const edit of this.state.edits(action)) this.annotate(edit, t0);
    if (action.type === "rest-negative") this.move(1, false);
  }

  /**
   * @param {number} delta
   * @param {boolean} extend
   * @returns {boolean} whether the cursor could move
   */
  move(delta, extend) {
    const { state } = this;
    if (delta > 0 && state.queue.length && state.cursor === state.queue.length - 1) {
      this.onEnd(); // the end of the sample: the view says so and offers the next one
      return false;
    }
    if (!state.move(delta, extend)) return false;
    this.markTime = this.now();
    this.cursorMoved();
    return true;
  }

  /**
   * A click on an image of the grid.
   * @param {number} index
   * @param {import("./labels.mjs").SelectMode} mode
   */
  select(index, mode) {
    this.onNote("", false);
    this.state.select(index, mode);
    this.cursorMoved();
  }

  /** Fetch what the new position needs, repaint, and tell the kernel where the view is. */
  cursorMoved() {
    this.fetchLabels();
    this.onChange();
    // Online re-ranking keeps the rows up to the cursor; nothing answers this message.
    this.rpc.notify({ type: "cursor", index: this.state.cursor });
  }

  /** Seconds spent on the current image since the last move or label (time accounting). */
  seconds() {
    const now = this.now();
    const s = (now - this.markTime) / 1000;
    this.markTime = now;
    return Math.min(Math.max(s, 0), 3600);
  }

  // ---------------------------------------------------------------- requests
  /**
   * Send a request; on failure show why and run `recover`.
   * @param {Message} content
   * @param {{timing?: "ack" | "labels", t0?: number, recover?: (err: RequestError) => void}} [opts]
   * @returns {Promise<Message | null>} the reply, or null when the request failed
   */
  async request(content, opts = {}) {
    const t0 = opts.t0 ?? this.now();
    if (this.gone) {
      this.onNote(`Not done: ${this.goneText()}`, true);
      return null;
    }
    try {
      const reply = await this.rpc.request(content);
      if (opts.timing) this.timings[opts.timing].push(this.now() - t0);
      return reply;
    } catch (err) {
      if (!(err instanceof RequestError)) throw err;
      this.onNote(this.gone ? this.goneText() : err.message, true); // a send that found the kernel gone
      opts.recover?.(err);
      return null;
    }
  }

  /**
   * Show an edit at once (pending), send it, and settle it on the acknowledgement. A refusal
   * or a lost acknowledgement re-reads the rows, so the view ends up showing what the kernel
   * holds; a row whose acknowledgement was lost counts as unconfirmed until then.
   * @param {Edit} edit
   * @param {number} t0
   */
  async annotate(edit, t0) {
    const { state } = this;
    state.applyOptimistic(edit);
    this.onChange();
    const content = { type: "annotate", rows: edit.rows, changes: edit.changes, seconds: this.seconds() };
    const reply = await this.request(content, {
      timing: "ack",
      t0,
      recover: (err) => {
        if (this.gone) return; // never sent, or its reply can never come: it stays not saved
        state.settle(edit); // before the re-read, whose answer must not get the edit re-applied
        if (err.timedOut) for (const row of edit.rows) state.unconfirmed.add(row);
        this.reread(edit.rows);
      },
    });
    if (reply) state.settle(edit);
    this.onChange();
  }

  /**
   * Undo the latest annotation (through the journal), move to the image it changed and name it.
   * @param {number} t0
   */
  async undo(t0) {
    const reply = await this.request({ type: "undo" }, { timing: "ack", t0 });
    if (!reply) return;
    /** @type {RowValues[]} */
    const rows = reply.rows ?? [];
    if (!rows.length) {
      this.onNote("Nothing to undo.", false);
      return;
    }
    const indices = rows.map((v) => this.state.queue.indexOf(v.row)).filter((i) => i >= 0);
    if (indices.length) {
      this.state.showIndices(indices);
      this.markTime = this.now();
      this.cursorMoved();
    }
    this.onNote(undoneText(rows, this.classes, indices.length), false);
  }

  /**
   * Write the current image's solid suggestions; with `next`, then move to the next image.
   * @param {number} t0
   * @param {boolean} [next]
   */
  async accept(t0, next = false) {
    const { row, current } = this.state;
    if (row === undefined || !current) return;
    if (!current.suggest) {
      this.onNote("No model predictions yet.", true);
      return;
    }
    const reply = await this.request({ type: "accept", row, seconds: this.seconds() }, { timing: "ack", t0 });
    if (reply && next && this.state.row === row) this.move(1, false);
  }

  /**
   * Ask again for rows (after a failed edit), so the view shows what the kernel holds.
   * @param {number[]} rows
   */
  reread(rows) {
    this.state.forget(rows);
    for (const row of rows) this.state.fresh.delete(row);
    this.requestLabels(rows);
  }

  /** Fetch the values of rows near the cursor that the view does not hold, or holds stale. */
  fetchLabels() {
    const rows = this.state.wanted(this.pageSize);
    for (let i = 0; i < rows.length; i += LABEL_CHUNK) this.requestLabels(rows.slice(i, i + LABEL_CHUNK));
  }

  /** @param {number[]} rows */
  async requestLabels(rows) {
    for (const row of rows) this.state.requested.add(row);
    await this.request({ type: "labels", rows }, { timing: "labels", recover: () => this.state.forget(rows) });
    this.onChange();
  }

  /**
   * Draw a new queue; the `queue` trait brings it.
   * @param {{kind: string, cls: string | null}} subset
   * @param {{name: string, cls: string | null}} order
   * @param {number} count
   * @param {number} [randomFraction]  share of the rows drawn at random instead
   */
  async sample(subset, order, count, randomFraction = 0) {
    this.onNote("Sampling…", false);
    const content = {
      type: "sample", subset: { kind: subset.kind, cls: subset.cls },
      order: { name: order.name, cls: order.cls, random_fraction: randomFraction }, count,
    };
    const reply = await this.request(content);
    if (reply) this.onNote(`Sampled ${reply.count} images.`, false);
  }

  /**
   * The current image at full resolution; the view attaches the image bytes (`buffer`) to the
   * reply before it reaches here.
   * @param {{row: number, bands: number[] | null, stretch: [number, number] | null}} req
   * @returns {Promise<Message | null>}
   */
  async full(req) {
    return this.request({ type: "full", row: req.row, bands: req.bands, stretch: req.stretch });
  }

  /** "More like this": the queue becomes the current image and its nearest neighbours. */
  async similar() {
    const { row } = this.state;
    if (row === undefined) return;
    this.onNote("Finding the nearest neighbours…", false);
    const reply = await this.request({ type: "similar", row });
    if (!reply) return;
    this.state.restart(); // the queue (its trait came first) starts with this image
    this.cursorMoved();
    this.onNote(`The ${reply.count} images most like this one follow it (→).`, false);
  }

  /**
   * File names that match `text`, for the jump box's completions.
   * @param {string} text
   * @returns {Promise<string[]>}
   */
  async complete(text) {
    const reply = await this.rpc.request({ type: "find", text }).catch(() => null);
    return reply ? reply.names : [];
  }

  /**
   * Move to the image named `text` (the kernel puts it in the queue after the cursor if it is
   * not in it; the queue trait comes before the reply).
   * @param {string} text
   * @returns {Promise<boolean>} whether it was found
   */
  async jump(text) {
    this.onNote("", false);
    const reply = await this.request({ type: "jump", text });
    if (!reply) return false;
    this.state.select(reply.index);
    this.markTime = this.now();
    this.cursorMoved();
    return true;
  }

  async save() {
    this.onNote("Saving…", false);
    const reply = await this.request({ type: "save" });
    if (reply) this.onNote(`Saved to ${reply.path}`, false);
  }

  /**
   * Add, rename or remove a class; the `classes` trait brings the result.
   * @param {Message} content  `{type: "class", action, name, new?}`
   * @returns {Promise<boolean>} whether the kernel accepted it
   */
  async editClass(content) {
    this.onNote("", false);
    return (await this.request(content)) !== null;
  }

  /**
   * A custom message other than a thumbnail: values of rows (replies reach every view, so each
   * keeps its copy of a row current) and the reply to a request of this view.
   * @param {Message} msg
   */
  receive(msg) {
    const values = msg.type === "labels" || msg.type === "ack";
    if (values && Array.isArray(msg.rows)) this.state.receive(/** @type {RowValues[]} */ (msg.rows));
    // The queue of a sample this view asked for follows its reply: start it at its first image
    // (the queue change would otherwise keep the cursor where a matching start allows).
    if (this.rpc.handle(msg) && msg.type === "sampled") this.state.restart();
    if (values) this.onChange();
  }

  close() {
    this.rpc.close();
  }
}
