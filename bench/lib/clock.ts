/**
 * Wall-clock milliseconds with sub-millisecond precision, comparable across processes on
 * one machine: every process adds its monotonic clock to its own time origin. Latencies are
 * the receiver's `now()` minus the `t` the server embedded in the message.
 */
const origin = performance.timeOrigin;

export function now(): number {
  return origin + performance.now();
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
