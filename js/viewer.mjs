// @ts-check
// The full-resolution viewer: the current image as the kernel renders it at its own size
// (long side capped), with zoom (wheel, + / -), pan (drag, arrows), and the stretch and band
// controls of the display options. It takes the place of the grid and side panel while open;
// Esc closes it and the keys label again. Geometry and keys live in zoom.mjs.

import { button, h } from "./dom.mjs";
import { PAN_SHARE, STRETCHES, ZOOM_STEP, centre, fit, pan, parseBands, viewerAction, viewerHelp, zoomAt } from "./zoom.mjs";

/**
 * @typedef {import("./types.mjs").Message} Message
 * @typedef {{row: number, bands: number[] | null, stretch: [number, number] | null}} FullRequest
 */

export class Viewer {
  /**
   * @param {{load: (req: FullRequest) => Promise<{msg: Message, buffer: DataView} | null>,
   *   onClose: () => void}} on  `load` asks the kernel for the image (null: it failed, and said why)
   */
  constructor(on) {
    this.on = on;
    /** @type {number | undefined} */
    this.row = undefined;
    this.view = { scale: 1, x: 0, y: 0 };
    this.image = { w: 1, h: 1 };
    /** @type {Message | null} */
    this.meta = null;
    this.url = "";
    this.loads = 0; // a newer load wins over a slower older one
    this.loading = false; // a load is on its way: the info line says so until it lands
    /** @type {number | undefined} the row of the image in `img` */
    this.shownRow = undefined;
    // The user zoomed, panned or fitted since the last load began: the image that lands keeps
    // that view (when it is the one shown, at the same size) instead of being fitted over it.
    this.touched = false;

    this.box = h("div", "pw-viewer");
    this.box.hidden = true;
    this.title = h("span", "pw-viewer-name");
    this.stretch = h("select", "pw-viewer-stretch");
    this.stretch.title = "contrast stretch: percentiles of each band mapped to black and white";
    this.stretch.replaceChildren(...STRETCHES.map((s, i) => Object.assign(h("option", "", s.title), { value: String(i) })));
    this.stretch.addEventListener("change", () => this.reload());
    this.bands = h("input", "pw-viewer-bands");
    Object.assign(this.bands, { placeholder: "bands, e.g. 3,2,1", title: "one band (gray) or three (red, green, blue), from 0; Enter shows them" });
    this.bands.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") {
        ev.preventDefault();
        this.reload();
      }
    });
    const tools = h("div", "pw-viewer-bar");
    tools.append(
      this.title, this.stretch, this.bands,
      button("pw-button pw-zoom-out", "−", () => this.act({ type: "zoom", factor: 1 / ZOOM_STEP })),
      button("pw-button pw-zoom-in", "+", () => this.act({ type: "zoom", factor: ZOOM_STEP })),
      button("pw-button pw-fit", "Fit", () => this.act({ type: "fit" })),
      button("pw-button pw-close", "Close (Esc)", () => this.close()),
    );
    this.info = h("div", "pw-viewer-info");
    this.port = h("div", "pw-viewport");
    this.img = h("img", "pw-full");
    this.img.draggable = false;
    this.img.alt = "";
    this.port.append(this.img);
    const help = h("div", "pw-viewer-help", `Viewer keys: ${viewerHelp()}`);
    this.box.append(tools, this.info, this.port, help);
    this.listen();
  }

  get isOpen() {
    return !this.box.hidden;
  }

  listen() {
    this.port.addEventListener("wheel", (ev) => {
      ev.preventDefault();
      const r = this.port.getBoundingClientRect();
      this.userView(zoomAt(this.view, Math.exp(-ev.deltaY * 0.0015), ev.clientX - r.left, ev.clientY - r.top, this.image, this.portSize()));
    }, { passive: false });
    /** @type {{x: number, y: number} | null} */
    let drag = null;
    this.port.addEventListener("pointerdown", (ev) => {
      ev.preventDefault();
      drag = { x: ev.clientX, y: ev.clientY };
      this.port.setPointerCapture(ev.pointerId);
      this.port.classList.add("pw-dragging");
    });
    this.port.addEventListener("pointermove", (ev) => {
      if (!drag) return;
      this.userView(pan(this.view, ev.clientX - drag.x, ev.clientY - drag.y, this.image, this.portSize()));
      drag = { x: ev.clientX, y: ev.clientY };
    });
    const stop = () => {
      drag = null;
      this.port.classList.remove("pw-dragging");
    };
    this.port.addEventListener("pointerup", stop);
    this.port.addEventListener("pointercancel", stop);
  }

  /**
   * Open on `row` (or show another row while open).
   * @param {number} row
   * @param {string} name
   */
  open(row, name) {
    if (row !== this.shownRow) {
      // Another image is coming: show nothing of the last one meanwhile.
      this.img.removeAttribute("src");
      this.meta = null;
      this.shownRow = undefined;
    }
    this.row = row;
    this.title.textContent = name;
    this.box.hidden = false;
    this.reload();
  }

  close() {
    if (!this.isOpen) return;
    this.box.hidden = true;
    this.loads++; // a reply still on its way is dropped
    this.loading = false;
    this.on.onClose();
  }

  /** Ask the kernel for the image with the chosen stretch and bands. */
  async reload() {
    if (this.row === undefined) return;
    let bands;
    try {
      bands = parseBands(this.bands.value);
    } catch (err) {
      this.info.textContent = String(/** @type {Error} */ (err).message);
      this.info.dataset.error = "true";
      return;
    }
    const stretch = STRETCHES[Number(this.stretch.value) || 0].value;
    const ticket = ++this.loads;
    this.loading = true;
    this.touched = false;
    this.info.textContent = "Loading the full-resolution image…";
    this.info.dataset.error = "false";
    const got = await this.on.load({ row: this.row, bands, stretch });
    if (ticket !== this.loads) return;
    this.loading = false;
    if (!got) {
      this.info.textContent = "The full-resolution image could not be shown (see the message line).";
      this.info.dataset.error = "true";
      return;
    }
    this.show(got.msg, got.buffer);
  }

  /**
   * @param {Message} msg  the `full` reply
   * @param {DataView} buffer
   */
  show(msg, buffer) {
    if (this.url) URL.revokeObjectURL(this.url);
    const bytes = new Uint8Array(/** @type {ArrayBuffer} */ (buffer.buffer), buffer.byteOffset, buffer.byteLength);
    this.url = URL.createObjectURL(new Blob([bytes], { type: msg.mime }));
    const same = this.shownRow === this.row && this.image.w === msg.width && this.image.h === msg.height;
    this.meta = msg;
    this.shownRow = this.row;
    this.image = { w: msg.width, h: msg.height };
    this.img.src = this.url;
    this.img.style.width = `${msg.width}px`;
    this.img.style.height = `${msg.height}px`;
    // A zoom, pan or fit made while this image was on its way (a stretch or band change, the
    // viewer opened again on the same image) is the user's: keep it. A new image is fitted.
    const port = this.portSize();
    this.apply(same && this.touched ? centre(this.view, this.image, port) : fit(this.image, port));
  }

  portSize() {
    return { w: this.port.clientWidth || 1, h: this.port.clientHeight || 1 };
  }

  /** @param {import("./zoom.mjs").View} view */
  apply(view) {
    this.view = view;
    this.img.style.transform = `translate(${view.x}px, ${view.y}px) scale(${view.scale})`;
    this.img.classList.toggle("pw-pixelated", view.scale > 1.5);
    this.describe();
  }

  /** @param {import("./zoom.mjs").View} view  a view the user asked for (key, button, wheel, drag) */
  userView(view) {
    this.touched = true;
    this.apply(view);
  }

  /** What is shown: the file's size, what was sent (capped?), bands, stretch and zoom (not
   * while a load is on its way: the line says "Loading" until the image it describes lands). */
  describe() {
    const m = this.meta;
    if (!m || this.loading) return;
    const zoom = Math.round(this.view.scale * (m.width / m.source_width) * 100);
    const parts = [`${m.source_width}×${m.source_height} px, ${m.bands} band${m.bands === 1 ? "" : "s"} (${m.dtype})`];
    if (m.scaled) parts.push(`shown at ${m.width}×${m.height}: the long side is capped to ${m.max_side} px`);
    parts.push(`bands ${m.shown_bands.join(",")}`);
    parts.push(m.stretch ? `stretch ${m.stretch[0]}–${m.stretch[1]}%` : "no stretch (8-bit as stored)");
    parts.push(`zoom ${zoom}%`);
    this.info.textContent = parts.join(" · ");
    this.info.dataset.error = "false";
  }

  /**
   * A keydown while open.
   * @param {KeyboardEvent} ev
   * @returns {boolean} whether the viewer took it
   */
  key(ev) {
    const action = viewerAction(ev);
    if (!action) return false;
    this.act(action);
    return true;
  }

  /** @param {import("./zoom.mjs").ViewerAction} action */
  act(action) {
    const port = this.portSize();
    if (action.type === "close") this.close();
    else if (action.type === "fit") this.userView(fit(this.image, port));
    else if (action.type === "actual" && this.meta) {
      const one = this.meta.width / this.meta.source_width; // the sent image may be capped
      this.userView(zoomAt(this.view, 1 / (one * this.view.scale), port.w / 2, port.h / 2, this.image, port));
    } else if (action.type === "zoom") this.userView(zoomAt(this.view, action.factor, port.w / 2, port.h / 2, this.image, port));
    else if (action.type === "pan") this.userView(pan(this.view, action.dx * port.w * PAN_SHARE, action.dy * port.h * PAN_SHARE, this.image, port));
  }

  /** The viewport changed size: keep the image placed sensibly. */
  resized() {
    if (this.isOpen) this.apply(centre(this.view, this.image, this.portSize()));
  }

  destroy() {
    if (this.url) URL.revokeObjectURL(this.url);
  }
}
