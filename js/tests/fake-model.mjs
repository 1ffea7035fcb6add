// @ts-check
// A stand-in for the anywidget model and the kernel behind it, for the unit tests: traits,
// events, and a kernel that answers requests from a small label table, or drops them.

/**
 * @typedef {import("../types.mjs").Message} Message
 * @typedef {import("../types.mjs").RowValues} RowValues
 */

import { defaultKeys } from "./keytable.mjs";
export class FakeModel {
  /** @param {Record<string, any>} traits */
  constructor(traits) {
    /** @type {Record<string, any>} */
    this.traits = { columns: 5, revision: 0, subsets: [], orders: [], counts: {}, stats: {}, ...traits };
    // the kernel sends a key table with every class list
    if (traits.classes && !traits.keymap) this.traits.keymap = defaultKeys(traits.classes.length);
    /** @type {Message[]} every message the view sent */
    this.sent = [];
    /** @type {Map<string, Set<(...args: any[]) => void>>} */
    this.handlers = new Map();
    /** @type {((msg: Message) => void) | null} answers a sent message (the kernel) */
    this.kernel = null;
  }

  /** @param {string} key */
  get(key) {
    return this.traits[key];
  }

  /**
   * @param {string} key
   * @param {any} value
   */
  set(key, value) {
    this.traits[key] = value;
    this.emit(`change:${key}`);
  }

  /**
   * @param {string} names  space-separated event names
   * @param {(...args: any[]) => void} fn
   */
  on(names, fn) {
    for (const name of names.split(" ")) {
      if (!this.handlers.has(name)) this.handlers.set(name, new Set());
      this.handlers.get(name)?.add(fn);
    }
  }

  /**
   * @param {string} names
   * @param {(...args: any[]) => void} fn
   */
  off(names, fn) {
    for (const name of names.split(" ")) this.handlers.get(name)?.delete(fn);
  }

  /**
   * @param {string} name
   * @param {...any} args
   */
  emit(name, ...args) {
    for (const fn of this.handlers.get(name) ?? []) fn(...args);
  }

  /** @param {Message} content */
  send(content) {
    this.sent.push(content);
    this.kernel?.(content);
  }

  /** Messages sent so far of one type. */
  sentOf(/** @type {string} */ type) {
    return this.sent.filter((m) => m.type === type);
  }
}

/**
 * A kernel holding a label table: answers `labels` and `annotate` like the real protocol.
 * `drop(type)` makes it swallow requests of that type (a lost acknowledgement).
 */
export class FakeKernel {
  /**
   * @param {FakeModel} model
   * @param {string[]} classes
   * @param {number} nRows
   */
  constructor(model, classes, nRows) {
    this.model = model;
    this.classes = classes;
    /** @type {RowValues[]} */
    this.table = Array.from({ length: nRows }, (_, row) => ({
      row, labels: classes.map(() => null), exclude: false, validation: false, suggest: null, name: `img${row}.png`,
    }));
    /** @type {Set<string>} */
    this.dropping = new Set();
    /** @type {Message[]} requests it received (and did not drop) */
    this.received = [];
    this.cursor = 0; // where the view last said it was
    /** @type {RowValues[][]} the rows' values before each annotation, for `undo` */
    this.history = [];
    model.kernel = (msg) => this.answer(msg);
  }

  /** @param {string} type */
  drop(type) {
    this.dropping.add(type);
  }

  /** @param {number[]} rows */
  values(rows) {
    return rows.map((r) => structuredClone(this.table[r]));
  }

  /** @param {Message} msg */
  answer(msg) {
    if (this.dropping.has(msg.type)) return;
    this.received.push(msg);
    // Replies come asynchronously, as over the comm.
    queueMicrotask(() => {
      if (msg.type === "labels") this.model.emit("msg:custom", { type: "labels", id: msg.id, rows: this.values(msg.rows) }, []);
      else if (msg.type === "annotate") {
        this.history.push(this.values(msg.rows));
        for (const [field, value] of Object.entries(msg.changes)) {
          const i = this.classes.indexOf(field);
          if (i < 0 && field !== "exclude" && field !== "validation") {
            this.model.emit("msg:custom", { type: "error", id: msg.id, message: `unknown field ${field}` }, []);
            return;
          }
          for (const r of msg.rows) {
            if (i >= 0) this.table[r].labels[i] = value;
            else this.table[r][/** @type {"exclude" | "validation"} */ (field)] = value;
          }
        }
        this.model.emit("msg:custom", { type: "ack", id: msg.id, rows: this.values(msg.rows) }, []);
      } else if (msg.type === "save") this.model.emit("msg:custom", { type: "saved", id: msg.id, path: "/tmp/x.csv" }, []);
      else if (msg.type === "cursor") this.cursor = msg.index;
      else if (msg.type === "undo") {
        const before = this.history.pop() ?? [];
        for (const v of before) this.table[v.row] = v;
        this.model.emit("msg:custom", { type: "ack", id: msg.id, rows: this.values(before.map((v) => v.row)) }, []);
      }
      else if (msg.type === "accept") {
        // Solid suggestions of unset classes are written: yes above one half, no below.
        const v = this.table[msg.row];
        v.labels = v.labels.map((value, i) =>
          value === null && v.strength?.[i] === "solid" ? Number((v.suggest?.[i] ?? 0) >= 0.5) : value);
        this.model.emit("msg:custom", { type: "ack", id: msg.id, rows: this.values([msg.row]) }, []);
      }
      else if (msg.type === "jump") this.jump(msg);
      else if (msg.type === "similar") {
        // The row, then the others from the far end of the table (the "nearest").
        const rest = this.table.map((v) => v.row).filter((r) => r !== msg.row).reverse().slice(0, 5);
        this.model.set("queue", [msg.row, ...rest]);
        this.model.emit("msg:custom", { type: "similar", id: msg.id, count: rest.length }, []);
      }
    });
  }

  /**
   * Like the kernel: a queued image is found where it is, another is put after the cursor;
   * the queue trait changes before the reply comes.
   * @param {Message} msg
   */
  jump(msg) {
    const row = this.table.findIndex((v) => v.name === msg.text);
    if (row < 0) {
      this.model.emit("msg:custom", { type: "error", id: msg.id, message: `no file name contains '${msg.text}'` }, []);
      return;
    }
    const queue = [...this.model.get("queue")];
    let index = queue.indexOf(row);
    if (index < 0) {
      index = Math.min(this.cursor + 1, queue.length);
      queue.splice(index, 0, row);
      this.model.set("queue", queue);
    }
    this.model.emit("msg:custom", { type: "jumped", id: msg.id, index, row }, []);
  }
}

/** Timers the test advances by hand. */
export class FakeTimers {
  constructor() {
    this.now = 0;
    /** @type {Map<number, {at: number, fn: () => void}>} */
    this.timers = new Map();
    this.next = 1;
  }

  /**
   * @param {() => void} fn
   * @param {number} ms
   */
  set(fn, ms) {
    const id = this.next++;
    this.timers.set(id, { at: this.now + ms, fn });
    return id;
  }

  /** @param {unknown} id */
  clear(id) {
    this.timers.delete(/** @type {number} */ (id));
  }

  /** Move the clock on, firing the timers that fall due. */
  advance(/** @type {number} */ ms) {
    this.now += ms;
    for (const [id, t] of [...this.timers]) {
      if (t.at <= this.now) {
        this.timers.delete(id);
        t.fn();
      }
    }
  }
}

/** Let queued replies and promise callbacks run. */
export async function settle() {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}
