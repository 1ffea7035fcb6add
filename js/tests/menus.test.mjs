import assert from "node:assert/strict";
import { test } from "node:test";

import { ALL_CLASSES, classEntries, groupOptions, locate } from "../menus.mjs";

/** @param {import("../menus.mjs").Group} group */
const classChoices = (group) => classEntries(group).map((e) => e.title);

const orders = [
  { name: "random", cls: null, title: "random", purpose: "general" },
  { name: "maxent", cls: "maxent: x", title: "maxent: maxent: x", purpose: "general" },
  { name: "maxent", cls: "cat", title: "maxent: cat", purpose: "general" },
  { name: "badge", cls: null, title: "badge", purpose: "general" },
  { name: "badge", cls: "cat", title: "badge: cat", purpose: "general" },
  { name: "highest", cls: "cat", title: "highest: cat", purpose: "find positives of cat" },
];

test("options group by order (or subset kind), and the class goes to a second menu", () => {
  const groups = groupOptions(orders, (o) => o.name);
  assert.deepEqual(groups.map((g) => g.title), ["random", "maxent", "badge", "highest"]);
  assert.deepEqual(classChoices(groups[0]), []);
  assert.deepEqual(classChoices(groups[1]), ["maxent: x", "cat"]); // a class named like an order
  assert.deepEqual(classChoices(groups[2]), [ALL_CLASSES, "cat"]);
  assert.equal(groups[1].entries[1].index, 2); // back to the kernel's list
});

test("the order menu says what each order is for: the group without the class, the class menu with it", () => {
  const groups = groupOptions(orders, (o) => o.name);
  assert.deepEqual(groups.map((g) => g.hint), ["general", "general", "general", "find positives"]);
  assert.deepEqual(classEntries(groups[3]), [{ title: "cat", hint: "find positives of cat" }]);
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
