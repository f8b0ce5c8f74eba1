/**
 * The broker-independent half of a network {@link Bus} (Redis, AMQP…): events, counters,
 * health with once-per-outage `down`/`up` reporting, `ready()` waiters, handler dispatch,
 * the offline queue with `flush()`, and idempotent `close()`. Kept in one place so every
 * broker package reports outages, counts, queues and fails after `close()` the same way;
 * a subclass only moves bytes ({@link BusBase.send}, settled with {@link BusBase.sent})
 * and tells the base when the broker is reachable ({@link BusBase.markUp}) or lost
 * ({@link BusBase.markDown}).
 *
 * The offline queue: a publish the broker cannot take now (not connected yet, down and
 * reconnecting, blocked or congested) waits, in order, until it can, like ioredis'
 * offline queue but bounded by count, bytes and age. Only a full queue, the age limit,
 * a connection that breaks under publishes in flight, or `close()` drops; drops are
 * counted in `stats.dropped` and reported once per episode (a {@link PublishDroppedError}
 * on `error`, or one `console.warn` when nobody listens), and make `flush()` reject.
 *
 * For sibling packages only (exported through `@switchyard/server/internal`).
 */
import { EventEmitter } from "node:events";
import { ErrorCode, InvalidOptionError, PublishDroppedError, SwitchyardError } from "../errors.js";
import { Fifo } from "../fifo.js";
import { checkOptionKeys, nonNegativeInt, positiveInt } from "../options.js";
import type { Bus, BusEvents, BusHandler, BusStats } from "./bus.js";

/**
 * Bounds of a bus's offline queue: the publishes waiting for the broker. Past any bound a
 * publish is dropped (counted, reported once) instead of held.
 */
export interface OfflineQueueOptions {
  /** Publishes held at most; `0` disables the queue (publishes the broker cannot take now are dropped at once). @default 10000 */
  maxMessages?: number;
  /** Payload bytes held at most. @default 16 MiB */
  maxBytes?: number;
  /** Milliseconds a publish may wait for the broker before it is dropped; also bounds how long `flush()` and `close()` wait. @default 10000 */
  timeout?: number;
}

/** {@link OfflineQueueOptions} after validation. */
export interface ResolvedOfflineQueue {
  readonly maxMessages: number;
  readonly maxBytes: number;
  readonly timeout: number;
}

const OFFLINE_QUEUE_KEYS = Object.freeze({
  maxMessages: true,
  maxBytes: true,
  timeout: true,
} as const satisfies Record<keyof OfflineQueueOptions, true>);

/** Validates the `offlineQueue` option of a bus (InvalidOptionError naming the field). */
export function resolveOfflineQueue(opts: unknown = {}): ResolvedOfflineQueue {
  if (typeof opts !== "object" || opts === null) {
    throw new InvalidOptionError("offlineQueue", "an object", opts);
  }
  checkOptionKeys(opts, OFFLINE_QUEUE_KEYS, "offlineQueue.");
  const o = opts as OfflineQueueOptions;
  return Object.freeze({
    maxMessages: nonNegativeInt("offlineQueue.maxMessages", o.maxMessages ?? 10_000),
    maxBytes: nonNegativeInt("offlineQueue.maxBytes", o.maxBytes ?? 16 * 1024 * 1024),
    timeout: positiveInt("offlineQueue.timeout", o.timeout ?? 10_000),
  });
}

/** A publish waiting in the offline queue. */
interface Queued {
  readonly channel: string;
  readonly payload: Buffer;
  readonly seq: number;
  /** Deadline (Date.now() milliseconds) after which it is dropped. */
  readonly expires: number;
}

interface FlushWaiter {
  /** Settles once every publish up to this sequence number is settled. */
  readonly target: number;
  /** Publishes of its window dropped so far. */
  drops: number;
  reason: PublishDroppedError["reason"];
  resolve(): void;
  reject(err: Error): void;
}

const DROP_DETAIL: Readonly<Record<PublishDroppedError["reason"], string>> = {
  full: "the offline queue is full",
  timeout: "the broker did not take them within offlineQueue.timeout",
  failed: "the broker connection broke while they were in flight",
  closed: "the bus is closed",
};

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/**
 * Base class of the broker buses. `S` is the bus's stats shape ({@link BusStats} plus
 * its own counters), so `stats` keeps the subclass's type.
 */
export abstract class BusBase<S extends BusStats = BusStats> implements Bus {
  /** Mutable counters; `stats` hands out snapshots. */
  protected readonly counters: S;
  /**
   * The last connection error since the last `up`, reported as the cause of `down`.
   * Subclasses record it; {@link BusBase.markUp} clears it.
   */
  protected lastError: Error | undefined;
  private readonly events = new EventEmitter<BusEvents>();
  /** Names the broker in the error of calls made after `close()`. */
  private readonly label: string;
  private isHealthy = false;
  private isClosed = false;
  /** `down` was emitted and `up` not yet (one report per outage). */
  private inOutage = false;
  private closing: Promise<void> | undefined;
  /** `close()` was called: publishes are refused while the queue is flushed. */
  private isClosing = false;
  private upWaiters: Waiter[] = [];

  /** The offline queue's bounds. */
  protected readonly offline: ResolvedOfflineQueue;
  private readonly queue = new Fifo<Queued>();
  private queuedBytes = 0;
  private expiryTimer: NodeJS.Timeout | undefined;
  /** Sequence numbers of the publishes handed to the broker client, oldest first. */
  private readonly inflight = new Fifo<number>();
  /** Last sequence number given to a publish. */
  private seq = 0;
  /** Every publish up to this sequence number is settled (sent or dropped). */
  private settledThrough = 0;
  /** Settled publishes above `settledThrough` (a queued one expired while older ones were in flight). */
  private readonly settledEarly = new Set<number>();
  private flushWaiters: FlushWaiter[] = [];
  /** Drops no flush() window covered yet (reported by the next flush()). */
  private unflushedDrops = 0;
  private unflushedReason: PublishDroppedError["reason"] = "full";
  /** This episode's first drop was reported; cleared when the queue drains. */
  private dropReported = false;

  /**
   * @param label Broker name used in the "closed" error ("the `label` bus is closed").
   * @param counters Initial counters (all zero), including the subclass's own.
   * @param offlineQueue The bus's `offlineQueue` option (validated here).
   */
  protected constructor(label: string, counters: S, offlineQueue?: unknown) {
    this.label = label;
    this.counters = counters;
    this.offline = resolveOfflineQueue(offlineQueue);
  }

  /** Whether the broker is reachable now (between `up` and the next `down` or `close()`). */
  get healthy(): boolean {
    return this.isHealthy;
  }

  /** A snapshot of the counters. */
  get stats(): Readonly<S> {
    return { ...this.counters };
  }

  /**
   * Resolves once the bus is healthy (at once if it is); rejects if the bus is closed
   * first. Optional: the bus works (dropping publishes) before it is up.
   */
  ready(): Promise<void> {
    if (this.isClosed) return Promise.reject(this.closedError());
    if (this.isHealthy) return Promise.resolve();
    return this.nextUp();
  }

  /**
   * Publishes `payload` on `channel`: handed to the broker client now if it can take it,
   * else held in the offline queue (in order) until it can. Never throws; a publish that
   * cannot be held (queue full, or after `close()`) is dropped and counted.
   */
  publish(channel: string, payload: Buffer): void {
    if (this.isClosing) {
      this.drop(++this.seq, "closed");
      return;
    }
    const seq = ++this.seq;
    if (this.queue.length === 0 && this.isHealthy && this.send(channel, payload)) {
      this.inflight.push(seq);
      return;
    }
    const q = this.offline;
    if (this.queue.length >= q.maxMessages || this.queuedBytes + payload.length > q.maxBytes) {
      this.drop(seq, "full");
      return;
    }
    const expires = Date.now() + q.timeout;
    this.queue.push({ channel, payload, seq, expires });
    this.queuedBytes += payload.length;
    this.counters.queued = this.queue.length;
    if (this.expiryTimer === undefined) this.armExpiry(expires);
  }

  /**
   * Resolves once every publish made so far has been handed to the broker (Redis
   * answered the PUBLISH / RabbitMQ confirmed it) or dropped; rejects with a
   * {@link PublishDroppedError} if any publish made since the previous `flush()` was
   * dropped. Waits at most about `offlineQueue.timeout` while the broker is away.
   */
  flush(): Promise<void> {
    const drops = this.unflushedDrops;
    const reason = this.unflushedReason;
    this.unflushedDrops = 0;
    if (this.settledThrough >= this.seq) {
      return drops === 0 ? Promise.resolve() : Promise.reject(this.droppedError(reason, drops));
    }
    return new Promise((resolve, reject) => {
      this.flushWaiters.push({ target: this.seq, drops, reason, resolve, reject });
    });
  }

  /**
   * Hands one publish to the broker client if it can take it now; returns `false` to
   * keep it (and those after it) in the offline queue, to be retried by
   * {@link BusBase.drainQueue}. After returning `true`, the subclass calls
   * {@link BusBase.sent} exactly once for it, in the order of the calls.
   */
  protected abstract send(channel: string, payload: Buffer): boolean;

  /** The oldest publish in flight was confirmed (`ok`) or failed (dropped, counted). */
  protected sent(ok: boolean): void {
    const seq = this.inflight.shift();
    if (seq === undefined) return;
    if (ok) {
      this.counters.published++;
      this.settle(seq);
    } else this.drop(seq, "failed");
  }

  /**
   * Hands queued publishes to the broker while it takes them (called on `up`, and by
   * subclasses when a congested or blocked connection can take more).
   */
  protected drainQueue(): void {
    const queue = this.queue;
    while (queue.length > 0 && this.isHealthy) {
      const head = queue.peek()!;
      if (!this.send(head.channel, head.payload)) break;
      queue.shift();
      this.queuedBytes -= head.payload.length;
      this.inflight.push(head.seq);
    }
    this.counters.queued = queue.length;
    if (queue.length === 0) {
      clearTimeout(this.expiryTimer);
      this.expiryTimer = undefined;
      if (this.isHealthy) this.dropReported = false;
    }
  }

  abstract subscribe(channel: string, handler: BusHandler): Promise<void>;
  abstract unsubscribe(channel: string): Promise<void>;

  on<E extends keyof BusEvents>(event: E, listener: (...args: BusEvents[E]) => void): this {
    (this.events.on as (e: E, l: typeof listener) => void)(event, listener);
    return this;
  }

  off<E extends keyof BusEvents>(event: E, listener: (...args: BusEvents[E]) => void): this {
    (this.events.off as (e: E, l: typeof listener) => void)(event, listener);
    return this;
  }

  once<E extends keyof BusEvents>(event: E, listener: (...args: BusEvents[E]) => void): this {
    (this.events.once as (e: E, l: typeof listener) => void)(event, listener);
    return this;
  }

  /**
   * Refuses further publishes, waits for the queued and in-flight ones (as `flush()`,
   * at most about `offlineQueue.timeout`; drops are reported, not thrown), then marks
   * the bus closed and unhealthy, rejects pending `ready()` calls and runs
   * {@link BusBase.doClose} once. Emits no `down`. Idempotent.
   */
  close(): Promise<void> {
    if (this.closing === undefined) {
      this.isClosing = true;
      this.closing = this.flush().then(
        () => this.shutdown(),
        () => this.shutdown(),
      );
    }
    return this.closing;
  }

  /** Whether `close()` was called. */
  protected get closed(): boolean {
    return this.isClosed;
  }

  /**
   * Releases the broker resources. Called once by `close()`, after `closed` is set and
   * `ready()` waiters were rejected with `err` (reject the subclass's own waiters with it).
   */
  protected abstract doClose(err: SwitchyardError): Promise<void>;

  /** The cause `down` reports when no connection error was recorded in `lastError`. */
  protected abstract connectionLostError(): Error;

  /** The error of calls made after `close()`. */
  protected closedError(): SwitchyardError {
    return new SwitchyardError(ErrorCode.CLOSED, `the ${this.label} bus is closed`);
  }

  /** Resolves at the next `up` (even if healthy now); rejects if the bus is closed first. */
  protected nextUp(): Promise<void> {
    if (this.isClosed) return Promise.reject(this.closedError());
    return new Promise((resolve, reject) => this.upWaiters.push({ resolve, reject }));
  }

  /** The broker is reachable and fully set up: ends the outage and emits `up` (once). */
  protected markUp(): void {
    if (this.isClosed || this.isHealthy) return;
    this.isHealthy = true;
    this.inOutage = false;
    this.lastError = undefined;
    for (const w of this.upWaiters.splice(0)) w.resolve();
    // What waited goes out before anything published from `up` listeners.
    this.drainQueue();
    this.events.emit("up");
  }

  /**
   * The broker was lost (or could not be reached): unhealthy until the next
   * {@link BusBase.markUp}; emits `down` only for the first call of an outage.
   */
  protected markDown(): void {
    if (this.isClosed) return;
    this.isHealthy = false;
    if (this.inOutage) return;
    this.inOutage = true;
    this.counters.outages++;
    this.events.emit("down", this.lastError ?? this.connectionLostError());
  }

  /** Reports a non-fatal error; never throws, even without an `error` listener. */
  protected emitError(err: Error): void {
    // An EventEmitter throws an unhandled `error`; a bus must never crash its node.
    if (this.events.listenerCount("error") > 0) this.events.emit("error", err);
  }

  /** Counts a delivery and runs its handler; a throwing handler is reported as `error`. */
  protected dispatch(handler: BusHandler, channel: string, payload: Buffer): void {
    this.counters.received++;
    try {
      handler(channel, payload);
    } catch (err) {
      this.emitError(toError(err));
    }
  }

  /** Sets the closed state, drops what is still queued, then hands over to the subclass. */
  private shutdown(): Promise<void> {
    this.isClosed = true;
    this.isHealthy = false;
    const err = this.closedError();
    for (const w of this.upWaiters.splice(0)) w.reject(err);
    for (let q = this.queue.shift(); q !== undefined; q = this.queue.shift()) {
      this.drop(q.seq, "closed");
    }
    this.queuedBytes = 0;
    this.counters.queued = 0;
    clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    return this.doClose(err);
  }

  private armExpiry(at: number): void {
    this.expiryTimer = setTimeout(this.expire, Math.max(0, at - Date.now()));
  }

  /** Drops the queued publishes past their deadline (the oldest come first). */
  private readonly expire = (): void => {
    this.expiryTimer = undefined;
    const now = Date.now();
    const queue = this.queue;
    for (let head = queue.peek(); head !== undefined && head.expires <= now; head = queue.peek()) {
      queue.shift();
      this.queuedBytes -= head.payload.length;
      this.drop(head.seq, "timeout");
    }
    this.counters.queued = queue.length;
    const next = queue.peek();
    if (next !== undefined) this.armExpiry(next.expires);
  };

  /** Counts a dropped publish, charges it to the flush windows covering it, reports the episode's first. */
  private drop(seq: number, reason: PublishDroppedError["reason"]): void {
    this.counters.dropped++;
    let covered = false;
    for (const w of this.flushWaiters) {
      if (w.target < seq) continue;
      covered = true;
      if (w.drops++ === 0) w.reason = reason;
    }
    if (!covered) {
      if (this.unflushedDrops++ === 0) this.unflushedReason = reason;
    }
    this.settle(seq);
    if (this.dropReported) return;
    this.dropReported = true;
    const err = this.droppedError(reason, 1);
    err.message += "; until the queue drains, further drops are only counted (stats.dropped)";
    if (this.events.listenerCount("error") > 0) this.events.emit("error", err);
    else console.warn(`[switchyard] ${err.message}`);
  }

  private droppedError(reason: PublishDroppedError["reason"], n: number): PublishDroppedError {
    const q = this.offline;
    const bounds =
      reason === "full"
        ? ` (maxMessages ${q.maxMessages}, maxBytes ${q.maxBytes})`
        : reason === "timeout"
          ? ` (${q.timeout} ms)`
          : "";
    return new PublishDroppedError(reason, n, `${DROP_DETAIL[reason]}${bounds}`);
  }

  /** Marks publish `seq` settled and releases the flush() calls it completes. */
  private settle(seq: number): void {
    if (seq !== this.settledThrough + 1) this.settledEarly.add(seq);
    else {
      this.settledThrough = seq;
      while (this.settledEarly.delete(this.settledThrough + 1)) this.settledThrough++;
    }
    const waiters = this.flushWaiters;
    if (waiters.length === 0 || waiters[0]!.target > this.settledThrough) return;
    let done = 0;
    while (done < waiters.length && waiters[done]!.target <= this.settledThrough) done++;
    for (const w of waiters.splice(0, done)) {
      if (w.drops === 0) w.resolve();
      else w.reject(this.droppedError(w.reason, w.drops));
    }
  }
}

/**
 * Reconnect delay before attempt `attempt` (1-based): capped exponential backoff with
 * ±20 % jitter, so nodes that lost the broker together do not storm it together. Never
 * gives up — a node outlives broker outages.
 */
export function reconnectDelay(attempt: number, initialMs: number, maxMs: number): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(attempt - 1, 20));
  return Math.round(Math.min(maxMs, base * (0.8 + Math.random() * 0.4)));
}
