// @ts-check
// Requests from the labeler to the kernel: each carries an id (view id + counter, since
// replies reach every view of the widget), waits for the reply with that id, and fails with a
// RequestError when the kernel refuses it or does not answer in time, so no request can leave
// the view waiting forever.

/**
 * @typedef {import("./types.mjs").Message} Message
 * @typedef {{resolve: (reply: Message) => void, reject: (err: RequestError) => void,
 *   timer: unknown, content: Message}} Waiting
 * @typedef {{
 *   viewId?: string,
 *   timeouts?: Record<string, number>,
 *   setTimer?: (fn: () => void, ms: number) => unknown,
 *   clearTimer?: (timer: unknown) => void,
 * }} RpcOptions
 */

/** Milliseconds to wait for each kind of reply; `default` for the others. */
export const TIMEOUTS = Object.freeze({ default: 15_000, sample: 120_000, save: 120_000, class: 60_000, full: 60_000, similar: 60_000, jump: 30_000 });

/** A request the kernel refused (`error` reply) or did not answer within its timeout. */
export class RequestError extends Error {
  /**
   * @param {string} message
   * @param {Message} request  what was sent
   * @param {boolean} timedOut  true when no reply came in time
   */
  constructor(message, request, timedOut) {
    super(message);
    this.name = "RequestError";
    this.request = request;
    this.timedOut = timedOut;
  }
}

export class Rpc {
  /**
   * @param {(content: Message) => void} send  e.g. `(c) => model.send(c)`
   * @param {RpcOptions} [options]
   */
  constructor(send, options = {}) {
    this.send = send;
    this.viewId = options.viewId ?? Math.random().toString(36).slice(2, 8);
    /** @type {Record<string, number>} */
    this.timeouts = { ...TIMEOUTS, ...options.timeouts };
    this.setTimer = options.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = options.clearTimer ?? ((timer) => clearTimeout(/** @type {any} */ (timer)));
    this.nextId = 1;
    /** @type {Map<string, Waiting>} */
    this.waiting = new Map();
    /**
     * Called when a message could not be sent at all (the widget's connection to the kernel is
     * gone): the caller decides what the view says.
     * @type {(err: unknown) => void}
     */
    this.onUnreachable = () => {};
  }

  /** A fresh request id, unique to this view. */
  id() {
    return `${this.viewId}:${this.nextId++}`;
  }

  /**
   * Send a request and wait for its reply.
   * @param {Message} content  `{type, ...fields}`; the id is added here
   * @returns {Promise<Message>} the reply; rejects with RequestError on `error` or timeout
   */
  request(content) {
    const id = this.id();
    const message = { ...content, id };
    const ms = this.timeouts[content.type] ?? this.timeouts.default;
    return new Promise((resolve, reject) => {
      const timer = this.setTimer(() => {
        this.waiting.delete(id);
        const seconds = Math.round(ms / 1000);
        reject(new RequestError(`The kernel did not answer within ${seconds} s (busy or stopped?).`, message, true));
      }, ms);
      this.waiting.set(id, { resolve, reject, timer, content: message });
      try {
        this.send(message);
      } catch (err) {
        this.clearTimer(timer);
        this.waiting.delete(id);
        this.onUnreachable(err);
        reject(new RequestError(`Could not reach the kernel: ${err}`, message, false));
      }
    });
  }

  /**
   * Send a message whose answers carry no id (thumbnails): nothing waits for it.
   * @param {Message} content
   */
  notify(content) {
    try {
      this.send({ ...content, id: this.id() });
    } catch (err) {
      this.onUnreachable(err);
    }
  }

  /**
   * A custom message from the kernel: settles the request it answers.
   * @param {Message} msg
   * @returns {boolean} whether it answered a request of this view that was still waiting
   */
  handle(msg) {
    const id = typeof msg.id === "string" ? msg.id : null;
    const waiting = id === null ? undefined : this.waiting.get(id);
    if (!waiting || id === null) return false;
    this.waiting.delete(id);
    this.clearTimer(waiting.timer);
    if (msg.type === "error") waiting.reject(new RequestError(String(msg.message ?? "the kernel refused the request"), waiting.content, false));
    else waiting.resolve(msg);
    return true;
  }

  /** Requests still waiting for a reply. */
  get outstanding() {
    return this.waiting.size;
  }

  /** Stop waiting (the view is closed): pending promises never settle, no timer fires. */
  close() {
    for (const w of this.waiting.values()) this.clearTimer(w.timer);
    this.waiting.clear();
  }
}
