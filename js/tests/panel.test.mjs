import assert from "node:assert/strict";
import { test } from "node:test";

import { positionText, statsText } from "../panel.mjs";

test("the status says when the outfile is behind the journal, and never hides a failure", () => {
  assert.equal(statsText({ labels_per_minute: 12.34, export: { state: "exported", exported_at: 1, error: null } }),
    "12.3 labels/min");
  assert.equal(statsText({ export: { state: "pending", exported_at: null, error: null } }), "outfile updating");
  assert.equal(statsText({ export: { state: "failed", exported_at: null, error: "disk full" } }),
    "outfile not written: disk full");
});

test("the status says how many labels ago the online loop updated the model", () => {
  const online = (/** @type {any} */ extra) => ({ state: "running", rounds: 2, labels_since_update: 3, training: false, ...extra });
  assert.equal(statsText({ online: online({}) }), "online · model updated 3 labels ago");
  assert.equal(statsText({ online: online({ labels_since_update: 1 }) }), "online · model updated 1 label ago");
  assert.equal(statsText({ online: online({ state: "paused" }) }), "online (paused) · model updated 3 labels ago");
  assert.equal(statsText({ online: online({ rounds: 0 }) }), "online · first model training");
  assert.equal(statsText({ online: online({ state: "off" }) }), "");
});

test("the position reads as a person counts", () => {
  assert.equal(positionText(0, 50, 17, 1), "1 / 50 · row 17");
  assert.equal(positionText(4, 50, 3, 3), "5 / 50 · row 3 · 3 selected");
  assert.equal(positionText(0, 0, undefined, 0), "");
});
