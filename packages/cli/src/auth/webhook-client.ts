/**
 * POSTs JSON to a backend URL taken from configuration only (nothing a client sends picks
 * a URL or a header), with a timeout, a response size limit, no redirects, and bounded,
 * fair concurrency: at most `maxConcurrent` requests in flight and `maxQueued` waiting.
 *
 * Calls carry a key (the socket id, or the client address for the connect webhook). Each
 * key has at most {@link perKeyLimit}`(maxConcurrent)` calls in flight (4 of 64 by default)
 * and {@link perKeyLimit}`(maxQueued)` waiting; waiting calls sit in per-key queues served
 * round-robin, and a call that waits `timeoutMs` fails with `timeout` without being sent.
 * So a handful of sockets whose calls hang at the backend hold a few slots each, never the
 * pool, and other keys' calls go out at once; beyond the caps a call fails at once with
 * `busy`. Memory stays bounded and the event loop is never blocked.
 */

/** Settings of one webhook target. */
export interface WebhookTarget {
  url: string;
  timeoutMs: number;
  maxResponseBytes: number;
  headers: Record<string, string>;
  maxConcurrent: number;
  maxQueued: number;
}

export type WebhookResult =
  | { ok: true; status: number; body: unknown; ms: number }
  | {
      ok: false;
      reason: "timeout" | "busy" | "status" | "too-large" | "bad-json" | "network";
      detail: string;
      ms: number;
    };

/** Calls counted by outcome, and the pool's current occupancy. */
export interface WebhookStats {
  calls: number;
  ok: number;
  timeout: number;
  /** Calls refused at once: the pool's queue, or their key's share of it, was full. */
  busy: number;
  /** Of `busy`: refused because their key had its share of the queue waiting. */
  busyPerKey: number;
  /** Of `timeout`: calls that waited `timeoutMs` in the queue and were never sent. */
  queueTimeout: number;
  failed: number;
  inFlight: number;
  queued: number;
  /** Keys with calls in flight or waiting (bounded by inFlight + queued). */
  keys: number;
}

/**
 * A key's share of a pool of `size`: a sixteenth, at least 1 — 4 of the default 64 calls in
 * flight, 62 of the default 1000 waiting.
 */
export function perKeyLimit(size: number): number {
  return Math.max(1, Math.floor(size / 16));
}

interface Waiter {
  start: () => void;
  /** Fails the call as a queue timeout (removed from its queue). */
  expire: () => void;
  /** performance.now() past which the call would have no time left. */
  deadline: number;
  timer: NodeJS.Timeout;
}

interface KeyState {
  inFlight: number;
  waiting: Waiter[];
}

export class WebhookClient {
  readonly stats: WebhookStats = {
    calls: 0,
    ok: 0,
    timeout: 0,
    busy: 0,
    busyPerKey: 0,
    queueTimeout: 0,
    failed: 0,
    inFlight: 0,
    queued: 0,
    keys: 0,
  };
  /** Called with each completed call's latency (ms) and outcome, e.g. for a histogram. */
  onLatency: ((ms: number, outcome: string) => void) | undefined = undefined;
  readonly #target: WebhookTarget;
  readonly #perKeyInFlight: number;
  readonly #perKeyQueued: number;
  /** A waiting call with less time left than this fails without being sent. */
  readonly #minLeftMs: number;
  /** Keys in round-robin order: a key served is moved to the end. */
  readonly #keys = new Map<string, KeyState>();
  readonly #controllers = new Set<AbortController>();
  #closed = false;

  constructor(target: WebhookTarget) {
    this.#target = target;
    this.#perKeyInFlight = perKeyLimit(target.maxConcurrent);
    this.#perKeyQueued = perKeyLimit(target.maxQueued);
    this.#minLeftMs = Math.min(50, target.timeoutMs / 10);
  }

  /**
   * POSTs `body` as JSON; never throws. `key` names whose call this is (a socket id, a
   * client address): calls of one key get a bounded share of the pool.
   */
  async post(body: unknown, key = ""): Promise<WebhookResult> {
    const t0 = performance.now();
    this.stats.calls++;
    if (this.#closed) return this.#fail("network", "closed", t0);
    const state = this.#state(key);
    if (
      this.stats.inFlight >= this.#target.maxConcurrent ||
      state.inFlight >= this.#perKeyInFlight
    ) {
      const perKey = state.waiting.length >= this.#perKeyQueued;
      if (perKey || this.stats.queued >= this.#target.maxQueued) {
        this.stats.busy++;
        if (perKey) this.stats.busyPerKey++;
        this.#forget(key, state);
        this.onLatency?.(0, "busy");
        return {
          ok: false,
          reason: "busy",
          detail: perKey
            ? `more than ${this.#perKeyQueued} webhook calls of one client waiting`
            : "too many webhook calls in flight",
          ms: 0,
        };
      }
      const started = await new Promise<boolean>((resolve) => {
        const w: Waiter = {
          start: () => {
            clearTimeout(w.timer);
            resolve(true);
          },
          expire: () => {
            clearTimeout(w.timer);
            const i = state.waiting.indexOf(w);
            if (i >= 0) state.waiting.splice(i, 1);
            this.stats.queued--;
            this.#forget(key, state);
            resolve(false);
          },
          deadline: t0 + this.#target.timeoutMs,
          timer: setTimeout(() => w.expire(), this.#target.timeoutMs),
        };
        state.waiting.push(w);
        this.stats.queued++;
      });
      if (!started) {
        this.stats.queueTimeout++;
        return this.#fail("timeout", `no answer within ${this.#target.timeoutMs} ms`, t0);
      }
      if (this.#closed) {
        state.inFlight--;
        this.stats.inFlight--;
        this.#forget(key, state);
        return this.#fail("network", "closed", t0);
      }
    } else {
      state.inFlight++;
      this.stats.inFlight++;
    }
    try {
      return await this.#send(body, t0);
    } finally {
      state.inFlight--;
      this.stats.inFlight--;
      if (this.#keys.get(key) === state) {
        // A key just served goes to the end of the ring: other waiting keys come first.
        this.#keys.delete(key);
        this.#keys.set(key, state);
      }
      this.#forget(key, state);
      this.#dispatch();
    }
  }

  #state(key: string): KeyState {
    let s = this.#keys.get(key);
    if (s === undefined) {
      s = { inFlight: 0, waiting: [] };
      this.#keys.set(key, s);
      this.stats.keys = this.#keys.size;
    }
    return s;
  }

  #forget(key: string, state: KeyState): void {
    if (state.inFlight === 0 && state.waiting.length === 0 && this.#keys.get(key) === state) {
      this.#keys.delete(key);
      this.stats.keys = this.#keys.size;
    }
  }

  /** Starts waiting calls, one key at a time in round-robin order, while slots are free. */
  #dispatch(): void {
    // Each round starts one call (bounded by `queued`) or finds none startable and stops.
    while (this.stats.queued > 0 && this.stats.inFlight < this.#target.maxConcurrent) {
      let next: [string, KeyState] | undefined;
      for (const entry of this.#keys) {
        if (entry[1].waiting.length > 0 && entry[1].inFlight < this.#perKeyInFlight) {
          next = entry;
          break;
        }
      }
      if (next === undefined) return;
      const [key, state] = next;
      const w = state.waiting[0] as Waiter;
      if (w.deadline - performance.now() < this.#minLeftMs) {
        // Too little time left to be worth a request: a timeout now, unsent.
        w.expire();
        continue;
      }
      state.waiting.shift();
      this.stats.queued--;
      state.inFlight++;
      this.stats.inFlight++;
      // To the end of the ring: the next free slot goes to another key first.
      this.#keys.delete(key);
      this.#keys.set(key, state);
      w.start();
    }
  }

  async #send(body: unknown, t0: number): Promise<WebhookResult> {
    const target = this.#target;
    const ac = new AbortController();
    this.#controllers.add(ac);
    let timedOut = false;
    // The remaining time after waiting in the queue counts against the same bound.
    const left = Math.max(1, target.timeoutMs - (performance.now() - t0));
    const timer = setTimeout(() => {
      timedOut = true;
      ac.abort();
    }, left);
    try {
      const res = await fetch(target.url, {
        method: "POST",
        headers: { ...target.headers, "content-type": "application/json" },
        body: JSON.stringify(body),
        redirect: "manual",
        signal: ac.signal,
      });
      const text = await readLimited(res, target.maxResponseBytes, ac);
      if (text === undefined)
        return this.#fail("too-large", `response over ${target.maxResponseBytes} bytes`, t0);
      if (res.status < 200 || res.status > 299)
        return this.#fail("status", `HTTP ${res.status}`, t0);
      let parsed: unknown;
      try {
        parsed = text === "" ? undefined : JSON.parse(text);
      } catch {
        return this.#fail("bad-json", "response is not JSON", t0);
      }
      const ms = performance.now() - t0;
      this.stats.ok++;
      this.onLatency?.(ms, "ok");
      return { ok: true, status: res.status, body: parsed, ms };
    } catch (err) {
      if (timedOut) return this.#fail("timeout", `no answer within ${target.timeoutMs} ms`, t0);
      return this.#fail("network", (err as Error).message, t0);
    } finally {
      clearTimeout(timer);
      this.#controllers.delete(ac);
    }
  }

  #fail(
    reason: Exclude<WebhookResult, { ok: true }>["reason"],
    detail: string,
    t0: number,
  ): WebhookResult {
    const ms = performance.now() - t0;
    if (reason === "timeout") this.stats.timeout++;
    else this.stats.failed++;
    this.onLatency?.(ms, reason);
    return { ok: false, reason, detail, ms };
  }

  /** Aborts calls in flight and fails the queued ones. */
  close(): void {
    this.#closed = true;
    for (const ac of this.#controllers) ac.abort();
    for (const [key, state] of this.#keys) {
      for (const w of state.waiting.splice(0)) {
        this.stats.queued--;
        state.inFlight++;
        this.stats.inFlight++;
        w.start();
      }
      this.#forget(key, state);
    }
  }
}

/** The body as text, or undefined (and the request aborted) once it passes `limit` bytes. */
async function readLimited(
  res: Response,
  limit: number,
  ac: AbortController,
): Promise<string | undefined> {
  const declared = Number(res.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > limit) {
    ac.abort();
    return undefined;
  }
  if (res.body === null) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      ac.abort();
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}
