/**
 * Remembers idempotency keys for a window so that a retried publish is not delivered
 * twice. Bounded: above `maxKeys` the oldest keys are forgotten first. Insertion order of
 * the Map is expiry order (one window for all), so expiry is a walk from the front.
 */
export class IdempotencyWindow {
  readonly #seen = new Map<string, number>();
  readonly #windowMs: number;
  readonly #maxKeys: number;
  /** Keys forgotten early because the window was full. */
  evicted = 0;

  constructor(windowMs: number, maxKeys: number) {
    this.#windowMs = windowMs;
    this.#maxKeys = maxKeys;
  }

  /** True if `key` was recorded within the window; otherwise records it and returns false. */
  checkAndRecord(key: string, now = Date.now()): boolean {
    this.#expire(now);
    if (this.#seen.has(key)) return true;
    this.record(key, now);
    return false;
  }

  /** Records `key` (e.g. seen by another node) without asking. */
  record(key: string, now = Date.now()): void {
    if (this.#seen.has(key)) return;
    if (this.#seen.size >= this.#maxKeys) {
      const oldest = this.#seen.keys().next();
      if (oldest.done !== true) {
        this.#seen.delete(oldest.value);
        this.evicted++;
      }
    }
    this.#seen.set(key, now + this.#windowMs);
  }

  get size(): number {
    return this.#seen.size;
  }

  #expire(now: number): void {
    for (const [key, until] of this.#seen) {
      if (until > now) break;
      this.#seen.delete(key);
    }
  }
}
