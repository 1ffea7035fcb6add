// @ts-check
// The full-resolution viewer's geometry and keys.
import assert from "node:assert/strict";
import { test } from "node:test";

import { MAX_ZOOM, centre, fit, pan, parseBands, viewerAction, viewerHelp, zoomAt } from "../zoom.mjs";

const PORT = { w: 400, h: 300 };

test("fit shows the whole image, centred", () => {
  assert.deepEqual(fit({ w: 800, h: 300 }, PORT), { scale: 0.5, x: 0, y: 75 });
  assert.deepEqual(fit({ w: 10, h: 10 }, PORT), { scale: 30, x: 50, y: 0 });
  assert.deepEqual(fit({ w: 5, h: 5 }, PORT), { scale: MAX_ZOOM, x: 120, y: 70 }, "never past the largest zoom");
});

test("zoom keeps the image point under the pointer in place", () => {
  const image = { w: 800, h: 600 };
  const view = fit(image, PORT); // scale 0.5, fills the port
  const [px, py] = [100, 50];
  const before = [(px - view.x) / view.scale, (py - view.y) / view.scale];
  const zoomed = zoomAt(view, 2, px, py, image, PORT);
  assert.equal(zoomed.scale, 1);
  assert.deepEqual([(px - zoomed.x) / zoomed.scale, (py - zoomed.y) / zoomed.scale], before);
});

test("zoom stays within its limits and pan never leaves an empty band beside a large image", () => {
  const image = { w: 800, h: 600 };
  let view = fit(image, PORT);
  for (let i = 0; i < 40; i++) view = zoomAt(view, 2, 0, 0, image, PORT);
  assert.equal(view.scale, MAX_ZOOM);
  for (let i = 0; i < 40; i++) view = zoomAt(view, 0.5, 0, 0, image, PORT);
  assert.equal(view.scale, 0.25, "half the fitted scale at least");
  view = pan({ scale: 1, x: 0, y: 0 }, 1000, 1000, image, PORT);
  assert.deepEqual(view, { scale: 1, x: 0, y: 0 });
  view = pan(view, -5000, -5000, image, PORT);
  assert.deepEqual(view, { scale: 1, x: 400 - 800, y: 300 - 600 });
  assert.deepEqual(centre({ scale: 0.25, x: -7, y: 3 }, image, PORT), { scale: 0.25, x: 100, y: 75 });
});

test("the viewer's keys: zoom, pan, fit, close; other characters are swallowed", () => {
  assert.deepEqual(viewerAction({ key: "+" }), { type: "zoom", factor: 1.25 });
  assert.deepEqual(viewerAction({ key: "-" }), { type: "zoom", factor: 0.8 });
  assert.deepEqual(viewerAction({ key: "ArrowLeft" }), { type: "pan", dx: 1, dy: 0 });
  assert.deepEqual(viewerAction({ key: "Escape" }), { type: "close" });
  assert.deepEqual(viewerAction({ key: "z" }), { type: "close" });
  assert.deepEqual(viewerAction({ key: "f" }), { type: "fit" });
  assert.deepEqual(viewerAction({ key: "a" }), { type: "ignored" }, "a must not reach the notebook");
  assert.equal(viewerAction({ key: "c", ctrlKey: true }), null, "copy passes");
  assert.equal(viewerAction({ key: "Tab" }), null);
  assert.match(viewerHelp(), /^\+\/− zoom \(or the wheel\) · arrows pan \(or drag\) · f fit/);
});

test("the bands box takes one or three band numbers, or nothing", () => {
  assert.equal(parseBands(" "), null);
  assert.deepEqual(parseBands("3, 2,1"), [3, 2, 1]);
  assert.deepEqual(parseBands("4"), [4]);
  assert.throws(() => parseBands("1,2"), /one or three band numbers from 0/);
  assert.throws(() => parseBands("-1"), /got "-1"/);
});
