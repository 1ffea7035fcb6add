import assert from "node:assert/strict";
import { test } from "node:test";

import { ALL_CLASSES, classChoices, groupOptions, locate } from "../menus.mjs";

const orders = [
  { name: "random", cls: null, title: "random" },
  { name: "maxent", cls: "maxent: x", title: "maxent: maxent: x" },
  { name: "maxent", cls: "cat", title: "maxent: cat" },
  { name: "badge", cls: null, title: "badge" },
  { name: "badge", cls: "cat", title: "badge: cat" },
];

test("options group by order (or subset kind), and the class goes to a second menu", () => {
  const groups = groupOptions(orders, (o) => o.name);
  assert.deepEqual(groups.map((g) => g.title), ["random", "maxent", "badge"]);
  assert.deepEqual(classChoices(groups[0]), []);
  assert.deepEqual(classChoices(groups[1]), ["maxent: x", "cat"]); // a class named like an order
  assert.deepEqual(classChoices(groups[2]), [ALL_CLASSES, "cat"]);
  assert.equal(groups[1].entries[1].index, 2); // back to the kernel's list
});

test("a choice is found again by its key and class (a reloaded view shows the current sample)", () => {
  const groups = groupOptions(orders, (o) => o.name);
  assert.deepEqual(locate(groups, "maxent", "cat"), [1, 1]);
  assert.deepEqual(locate(groups, "badge", null), [2, 0]);
  assert.equal(locate(groups, "maxent", "dog"), null);
  assert.equal(locate(groups, "margin", null), null);
});

test("eleven classes: two menus of a few entries instead of one of dozens", () => {
  const classes = Array.from({ length: 11 }, (_, i) => `c${i}`);
  const subsets = [{ kind: "unlabeled", cls: null, title: "unlabeled" },
    ...classes.map((c) => ({ kind: "contains", cls: c, title: `contains: ${c}` })),
    ...classes.map((c) => ({ kind: "unlabeled_for", cls: c, title: `unlabeled for: ${c}` }))];
  const groups = groupOptions(subsets, (s) => s.kind);
  assert.equal(groups.length, 3);
  assert.equal(classChoices(groups[1]).length, 11);
});
