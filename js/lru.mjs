// @ts-check
// A small least-recently-used map; `onEvict` releases what an entry holds (e.g. an object URL).

/**
 * @template K, V
 */
export class LruCache {
  /**
   * @param {number} capacity  entries kept at most
   * @param {(key: K, value: V) => void} [onEvict]
   */
  constructor(capacity, onEvict = () => {}) {
    if (!(capacity >= 1)) throw new Error(`capacity must be >= 1, got ${capacity}`);
    this.capacity = capacity;
    this.onEvict = onEvict;
    /** @type {Map<K, V>} */
    this.map = new Map();
  }

  get size() {
    return this.map.size;
  }

  /** @param {K} key */
  has(key) {
    return this.map.has(key);
  }

  /**
   * The value for `key`, marking it most recently used; undefined if absent.
   * @param {K} key
   * @returns {V | undefined}
   */
  get(key) {
    if (!this.map.has(key)) return undefined;
    const value = /** @type {V} */ (this.map.get(key));
    this.map.delete(key);
    this.map.set(key, value);
    return value;
  }

  /**
   * @param {K} key
   * @param {V} value
   */
  set(key, value) {
    if (this.map.has(key)) {
      const old = /** @type {V} */ (this.map.get(key));
      this.map.delete(key);
      if (old !== value) this.onEvict(key, old);
    }
    this.map.set(key, value);
    while (this.map.size > this.capacity) {
      const [oldest, held] = /** @type {[K, V]} */ (this.map.entries().next().value);
      this.map.delete(oldest);
      this.onEvict(oldest, held);
    }
  }

  clear() {
    for (const [key, value] of this.map) this.onEvict(key, value);
    this.map.clear();
  }
}
