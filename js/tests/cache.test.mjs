// @ts-check
import { test } from "node:test";
import assert from "node:assert/strict";
import { LruCache } from "../lru.mjs";
import { planPrefetch, pageStart } from "../prefetch.mjs";

test("LRU evicts the least recently used entry and reports it", () => {
  /** @type {[number, string][]} */
  const evicted = [];
  const cache = new LruCache(2, (k, v) => evicted.push([k, v]));
  cache.set(1, "a");
  cache.set(2, "b");
  assert.equal(cache.get(1), "a"); // 1 is now most recent
  cache.set(3, "c");
  assert.deepEqual(evicted, [[2, "b"]]);
  assert.equal(cache.has(2), false);
  assert.deepEqual([...cache.map.keys()], [1, 3]);
  cache.set(1, "a2"); // replacing releases the old value
  assert.deepEqual(evicted.at(-1), [1, "a"]);
  cache.clear();
  assert.equal(cache.size, 0);
  assert.equal(evicted.length, 4);
});

test("LRU rejects a capacity below one", () => {
  assert.throws(() => new LruCache(0), /capacity/);
});

test("prefetch asks for the cursor first, then ahead, then behind, skipping held rows", () => {
  const queue = [10, 11, 12, 13, 14, 15, 16, 17];
  const cache = new Set([12]);
  const inflight = new Set([14]);
  const rows = planPrefetch(queue, 2, cache, inflight, { ahead: 3, behind: 2, batch: 10 });
  assert.deepEqual(rows, [13, 15, 11, 10]);
});

test("prefetch respects the batch size and the queue ends", () => {
  const queue = [5, 6, 7];
  assert.deepEqual(planPrefetch(queue, 2, new Set(), new Set(), { ahead: 5, behind: 0, batch: 2 }), [7]);
  assert.deepEqual(planPrefetch(queue, 0, new Set(), new Set(), { ahead: 5, behind: 5, batch: 2 }), [5, 6]);
  assert.deepEqual(planPrefetch([], 0, new Set(), new Set()), []);
});

test("pages start at multiples of the page size", () => {
  assert.equal(pageStart(0, 15), 0);
  assert.equal(pageStart(14, 15), 0);
  assert.equal(pageStart(15, 15), 15);
  assert.equal(pageStart(31, 15), 30);
});
