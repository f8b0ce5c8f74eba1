/**
 * Bounded waiting and cleanup for every test suite: awaiting a condition with a deadline
 * (never a bare sleep as synchronisation), bounding a promise, and a cleanup scope that
 * after-hooks close even when assertions failed.
 */

/** Resolves after `ms`: for pacing and for proving something does *not* happen. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `probe` every 5 ms until it returns true; rejects after `timeoutMs` naming `what`. */
export async function waitFor(
  probe: () => boolean | Promise<boolean>,
  timeoutMs = 3000,
  what: string | (() => string) = "condition",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${typeof what === "string" ? what : what()}`,
      );
    }
    await sleep(5);
  }
}

/** Rejects if `promise` does not settle within `timeoutMs`. */
export function within<T>(promise: Promise<T>, timeoutMs: number, what = "operation"): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${what} did not finish within ${timeoutMs} ms`)),
      timeoutMs,
    );
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/** Collects cleanups; `close()` runs them newest first, each bounded, and never throws. */
export class Scope {
  private readonly cleanups: (() => unknown)[] = [];
  private readonly cleanupTimeoutMs: number;

  constructor(cleanupTimeoutMs = 3000) {
    this.cleanupTimeoutMs = cleanupTimeoutMs;
  }

  add<T>(value: T, cleanup: (v: T) => unknown): T {
    this.cleanups.push(() => cleanup(value));
    return value;
  }

  async close(): Promise<void> {
    while (this.cleanups.length > 0) {
      const c = this.cleanups.pop()!;
      try {
        await within(Promise.resolve(c()), this.cleanupTimeoutMs, "cleanup");
      } catch {
        // Best effort: one stuck resource must not keep the others open.
      }
    }
  }
}
