/**
 * POSTs JSON to a backend URL taken from configuration only (nothing a client sends picks
 * a URL or a header), with a timeout, a response size limit, no redirects, and bounded
 * concurrency: at most `maxConcurrent` requests in flight and `maxQueued` waiting; beyond
 * that a call fails at once with `busy`, so a slow or dead backend costs bounded memory
 * and never blocks the event loop or other clients.
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
  busy: number;
  failed: number;
  inFlight: number;
  queued: number;
}

export class WebhookClient {
  readonly stats: WebhookStats = {
    calls: 0,
    ok: 0,
    timeout: 0,
    busy: 0,
    failed: 0,
    inFlight: 0,
    queued: 0,
  };
  /** Called with each completed call's latency (ms) and outcome, e.g. for a histogram. */
  onLatency: ((ms: number, outcome: string) => void) | undefined = undefined;
  readonly #target: WebhookTarget;
  readonly #waiting: (() => void)[] = [];
  readonly #controllers = new Set<AbortController>();
  #closed = false;

  constructor(target: WebhookTarget) {
    this.#target = target;
  }

  /** POSTs `body` as JSON; never throws. */
  async post(body: unknown): Promise<WebhookResult> {
    const t0 = performance.now();
    this.stats.calls++;
    if (this.#closed) return this.#fail("network", "closed", t0);
    if (this.stats.inFlight >= this.#target.maxConcurrent) {
      if (this.#waiting.length >= this.#target.maxQueued) {
        this.stats.busy++;
        this.onLatency?.(0, "busy");
        return { ok: false, reason: "busy", detail: "too many webhook calls in flight", ms: 0 };
      }
      this.stats.queued++;
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
      this.stats.queued--;
      if (this.#closed) return this.#fail("network", "closed", t0);
    }
    this.stats.inFlight++;
    try {
      return await this.#send(body, t0);
    } finally {
      this.stats.inFlight--;
      this.#waiting.shift()?.();
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
    for (const w of this.#waiting.splice(0)) w();
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
