/**
 * A drift-free periodic scheduler. Slot n is due at `origin + n * interval` on the
 * monotonic clock, so timer lateness never accumulates (chained `setInterval` or
 * `setTimeout(interval)` drift by the sum of every delay).
 *
 * When the event loop was blocked, the ticker does not catch up with a burst: it runs
 * only the newest due slot and counts the ones it skipped. A slot that would run more
 * than half an interval late is skipped as well, which guarantees that two runs are
 * never closer than half an interval apart.
 */
import { performance } from "node:perf_hooks";

/** Options of {@link Ticker}. */
export interface TickerOptions {
  /** Milliseconds between slots. */
  intervalMs: number;
  /**
   * Runs once per published slot, with the slot number (1, 2, …) and how late it runs
   * (0 ≤ lateMs ≤ intervalMs / 2).
   */
  onSlot: (slot: number, lateMs: number) => void;
  /** Called when `onSlot` throws; the ticker keeps going. @default console.error */
  onError?: (err: unknown) => void;
  /** Monotonic clock in ms. @default performance.now */
  now?: () => number;
}

/** Counters of a {@link Ticker}. */
export interface TickerStats {
  /** Slots that ran. */
  slots: number;
  /** Slots skipped because the loop was blocked (each would have been a burst). */
  missedSlots: number;
  /** Lateness of the latest run, ms. */
  lastLateMs: number;
  /** Largest lateness of any run, ms. */
  maxLateMs: number;
  /** Times `onSlot` threw. */
  errors: number;
}

const defaultNow = (): number => performance.now();

export class Ticker {
  readonly intervalMs: number;
  private readonly onSlot: (slot: number, lateMs: number) => void;
  private readonly onError: (err: unknown) => void;
  private readonly now: () => number;
  private readonly counters: TickerStats = {
    slots: 0,
    missedSlots: 0,
    lastLateMs: 0,
    maxLateMs: 0,
    errors: 0,
  };
  private origin = 0;
  private next = 1;
  private timer: NodeJS.Timeout | undefined;

  constructor(opts: TickerOptions) {
    if (!(Number.isInteger(opts.intervalMs) && opts.intervalMs >= 10))
      throw new TypeError(`intervalMs: expected an integer ≥ 10, got ${opts.intervalMs}`);
    this.intervalMs = opts.intervalMs;
    this.onSlot = opts.onSlot;
    this.onError = opts.onError ?? ((err) => console.error("ticker:", err));
    this.now = opts.now ?? defaultNow;
  }

  /** Whether the ticker is running. */
  get running(): boolean {
    return this.timer !== undefined;
  }

  /** A snapshot of the counters. */
  get stats(): Readonly<TickerStats> {
    return { ...this.counters };
  }

  /** Starts counting slots from now; slot 1 is due one interval later. */
  start(): void {
    if (this.timer !== undefined) return;
    this.origin = this.now();
    this.next = 1;
    this.arm();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    const wait = this.origin + this.next * this.intervalMs - this.now();
    // Node's timers run off the loop's cached clock and may fire up to ~1 ms early, or
    // earlier when armed late in a busy loop turn; `fire` re-arms in that case.
    this.timer = setTimeout(this.onTimer, Math.max(1, Math.ceil(wait)));
  }

  private readonly onTimer = (): void => {
    const now = this.now();
    const interval = this.intervalMs;
    if (now < this.origin + this.next * interval) {
      this.arm();
      return;
    }
    const due = Math.floor((now - this.origin) / interval);
    const lateMs = Math.round((now - (this.origin + due * interval)) * 100) / 100;
    if (lateMs > interval / 2) {
      // Too close to the next slot: running now would be a burst. Skip this one too.
      this.counters.missedSlots += due - this.next + 1;
      this.next = due + 1;
      this.arm();
      return;
    }
    this.counters.missedSlots += due - this.next;
    this.next = due + 1;
    this.arm();
    this.counters.slots++;
    this.counters.lastLateMs = lateMs;
    if (lateMs > this.counters.maxLateMs) this.counters.maxLateMs = lateMs;
    try {
      this.onSlot(due, lateMs);
    } catch (err) {
      this.counters.errors++;
      this.onError(err);
    }
  };
}
