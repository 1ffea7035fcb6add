// @ts-check
// Which thumbnails to ask the kernel for next: pure planning functions.

/**
 * Rows to request so the images around the cursor are ready before they are shown.
 * Nearest first: the cursor, then ahead of it, then behind it.
 *
 * @param {number[]} queue  row ids in display order
 * @param {number} cursor   index into `queue`
 * @param {{has: (row: number) => boolean}} cache  rows already held
 * @param {{has: (row: number) => boolean}} inflight  rows already requested
 * @param {{ahead?: number, behind?: number, batch?: number}} [opts]
 * @returns {number[]} at most `batch` row ids
 */
export function planPrefetch(queue, cursor, cache, inflight, opts = {}) {
  const { ahead = 24, behind = 4, batch = 16 } = opts;
  const order = [];
  for (let i = 0; i <= ahead; i++) order.push(cursor + i);
  for (let i = 1; i <= behind; i++) order.push(cursor - i);
  const rows = [];
  const seen = new Set();
  for (const index of order) {
    if (index < 0 || index >= queue.length) continue;
    const row = queue[index];
    if (seen.has(row) || cache.has(row) || inflight.has(row)) continue;
    seen.add(row);
    rows.push(row);
    if (rows.length >= batch) break;
  }
  return rows;
}

/**
 * Forget thumbnail requests older than `maxAge` (a lost reply), so they are asked for again.
 * @param {Map<number, number>} inflight  row -> when it was requested
 * @param {number} now
 * @param {number} maxAge  same unit as `now`
 */
export function expireInflight(inflight, now, maxAge) {
  for (const [row, since] of inflight) if (now - since > maxAge) inflight.delete(row);
}

/**
 * First index of the grid page holding `cursor`.
 * @param {number} cursor
 * @param {number} pageSize
 */
export function pageStart(cursor, pageSize) {
  return Math.floor(cursor / pageSize) * pageSize;
}
