import assert from "node:assert/strict";
import { test } from "node:test";

import { acceptText, extractionText, positionText, probabilityText, progressText, statsText, suggestionView } from "../panel.mjs";

test("a suggestion shows the value a press of a writes, and a probability that keeps its side of a threshold", () => {
  assert.equal(probabilityText(0.097), "0.097", "0.097 must not read 0.10 and be written no");
  assert.equal(probabilityText(0.0004), "<0.001");
  assert.equal(probabilityText(0.9996), ">0.999");
  assert.deepEqual(suggestionView(0.097, "solid"),
    { write: 0, text: "a → no", prob: "p 0.097", title: "model p = 0.097: a press of a writes no" });
  assert.equal(suggestionView(0.99, "solid").text, "a → yes");
  assert.equal(suggestionView(0.01, "solid").write, 0, "a solid no and a solid yes no longer look the same");
  assert.deepEqual(suggestionView(0.6, "faint"),
    { write: null, text: "", prob: "p 0.600", title: "model p = 0.6: too uncertain, a leaves this class as it is" });
  assert.deepEqual(suggestionView(null, "none"), { write: null, text: "", prob: "", title: "" });
});

test("the status says when the outfile is behind the journal, and never hides a failure", () => {
  assert.equal(statsText({ images_per_minute: 12.34, export: { state: "exported", exported_at: 1, error: null } }),
    "12.3 images/min");
  assert.equal(statsText({ export: { state: "pending", exported_at: null, error: null } }), "outfile updating");
  assert.equal(statsText({ export: { state: "failed", exported_at: null, error: "disk full" } }),
    "outfile not written: disk full");
});

test("the status says how many images ago the online loop updated the model", () => {
  const online = (/** @type {any} */ extra) => ({ state: "running", rounds: 2, images_since_update: 3, training: false, ...extra });
  assert.equal(statsText({ online: online({}) }), "online · model updated 3 images ago");
  assert.equal(statsText({ online: online({ images_since_update: 1 }) }), "online · model updated 1 image ago");
  assert.equal(statsText({ online: online({ state: "paused" }) }), "online (paused) · model updated 3 images ago");
  assert.equal(statsText({ online: online({ rounds: 0 }) }), "online · first model training");
  assert.equal(statsText({ online: online({ state: "off" }) }), "");
});

test("the position reads as a person counts", () => {
  assert.equal(positionText(0, 50, 17, 1), "1 / 50 · row 17");
  assert.equal(positionText(4, 50, 3, 3), "5 / 50 · row 3 · 3 selected");
  assert.equal(positionText(0, 0, undefined, 0), "");
});

test("progress counts the sample and the whole table", () => {
  assert.equal(progressText({ queue: { labeled: 3, total: 50 }, all: { labeled: 1234, total: 5000 } }),
    "Labeled: 3 of 50 in this sample · 1,234 of 5,000 in all");
  assert.equal(progressText({ queue: { labeled: 0, total: 0 }, all: { labeled: 0, total: 9 } }), "Labeled: 0 of 9 in all");
  assert.equal(progressText(undefined), "");
});

test("the extraction line counts the features so far, says a failure, and goes when done", () => {
  assert.equal(extractionText({ state: "running", done: 1200, total: 2000, description: "mobilenet_v3_small" }),
    "Features: 1,200 of 2,000 (mobilenet_v3_small) · orders on features once done");
  assert.equal(extractionText({ state: "failed", done: 3, total: 9, error: "no weights" }),
    "Feature extraction failed: no weights");
  assert.equal(extractionText({ state: "done", done: 9, total: 9 }), "");
  assert.equal(extractionText({ state: "idle" }), "");
  assert.equal(extractionText(undefined), "");
});

test("what one press of a would write: solid suggestions, the faint ones left", () => {
  const row = (/** @type {any} */ suggest, /** @type {any} */ strength) => ({
    row: 0, name: "x", labels: [null, null, null, 1], exclude: false, validation: false, suggest, strength,
  });
  const classes = ["cat", "dog", "bird", "owl"];
  assert.equal(acceptText(row([0.95, 0.03, 0.6, 0.99], ["solid", "solid", "faint", "none"]), classes),
    "a: writes yes cat, no dog; leaves bird (faint)");
  assert.equal(acceptText(row([0.7, null, 0.4, 0.99], ["faint", "none", "faint", "none"]), classes),
    "a: writes nothing; leaves cat, bird (faint)");
  assert.equal(acceptText(row([0.7, 0.2, 0.4, 0.99], ["none", "none", "none", "none"]), classes),
    "a: nothing to accept (every class with a prediction is labeled)");
  assert.equal(acceptText(row(null, null), classes), "");
});
