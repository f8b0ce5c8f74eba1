/**
 * The broker-independent half of a network {@link Bus} (Redis, AMQP…): events, counters,
 * health with once-per-outage `down`/`up` reporting, `ready()` waiters, handler dispatch
 * and idempotent `close()`. Kept in one place so every broker package reports outages,
 * counts and fails after `close()` the same way; a subclass only moves bytes and tells
 * the base when the broker is reachable ({@link BusBase.markUp}) or lost
 * ({@link BusBase.markDown}).
 *
 * For sibling packages only (exported through `@switchyard/server/internal`).
 */
import { EventEmitter } from "node:events";
import { ErrorCode, SwitchyardError } from "../errors.js";
import type { Bus, BusEvents, BusHandler, BusStats } from "./bus.js";

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
  private upWaiters: Waiter[] = [];

  /**
   * @param label Broker name used in the "closed" error ("the `label` bus is closed").
   * @param counters Initial counters (all zero), including the subclass's own.
   */
  protected constructor(label: string, counters: S) {
    this.label = label;
    this.counters = counters;
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

  abstract publish(channel: string, payload: Buffer): void;
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
   * Marks the bus closed and unhealthy, rejects pending `ready()` calls, then runs
   * {@link BusBase.doClose} once. Emits no `down`. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
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

  /** Sets the closed state synchronously (before `close()` returns), then hands over. */
  private shutdown(): Promise<void> {
    this.isClosed = true;
    this.isHealthy = false;
    const err = this.closedError();
    for (const w of this.upWaiters.splice(0)) w.reject(err);
    return this.doClose(err);
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
