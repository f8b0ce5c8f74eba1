/**
 * One timer per engine drives every session's heartbeat, instead of two timers per
 * session (engine.io's ping and pong timers).
 *
 * Every session is on one of two intrusive lists, each sorted by construction because
 * all sessions share `pingInterval` and `pingTimeout` (as Node sorts its own timers, one
 * list per duration):
 * - waiting for its next ping, by `nextPingAt` (always set to now + pingInterval, so an
 *   append keeps the order);
 * - waiting for a pong, by `pongDeadline`, set in the order the pings leave to
 *   max(nextPingAt + pingTimeout, now + pingTimeout / 2) (both terms grow along the
 *   list, so their max does too).
 *
 * The timer is armed for the earlier head. A tick sends the pings due within the next
 * `resolution` ms together (early rather than late, so one tick serves a batch) and
 * closes the sessions whose deadline has come — at the deadline itself, not at the next
 * tick. The deadline counts from when the ping was due, not from when a (late) tick sent
 * it: a session that stays silent is gone once pingInterval + pingTimeout have passed
 * since its last pong, as the protocol promises; only a ping delayed by more than half
 * of pingTimeout (a stalled event loop) moves it, so the client still has time to
 * answer. A tick costs the sessions it serves, not a scan.
 *
 * The times a target stores are whole milliseconds of `performance.now()`, rounded down
 * (a session is gone once pingInterval + pingTimeout have passed, as the protocol's test
 * suite checks, at most 1 ms early): V8 keeps a small integer in the field itself, where a
 * fractional time is a separate 16-byte heap number per field and session. (Past 2^31 ms,
 * ~24.8 days of process uptime, they are heap numbers again: correct, just bigger.)
 */

/** What the wheel needs from a session; the link fields belong to the wheel. */
export interface HeartbeatTarget {
  /** When the next ping is due (whole ms of `performance.now()`); 0 while a pong is awaited. */
  nextPingAt: number;
  /** When the awaited pong is overdue; 0 when none is awaited. */
  pongDeadline: number;
  /** Neighbours on the wheel's list. */
  hbPrev: HeartbeatTarget | undefined;
  hbNext: HeartbeatTarget | undefined;
  sendPing(): void;
  onPingTimeout(): void;
}

/** A doubly linked list threaded through the targets themselves: no node objects. */
class TargetList {
  head: HeartbeatTarget | undefined = undefined;
  tail: HeartbeatTarget | undefined = undefined;

  /** Appends `t`; true if it became the head (the list was empty). */
  push(t: HeartbeatTarget): boolean {
    t.hbNext = undefined;
    t.hbPrev = this.tail;
    if (this.tail === undefined) {
      this.head = this.tail = t;
      return true;
    }
    this.tail.hbNext = t;
    this.tail = t;
    return false;
  }

  remove(t: HeartbeatTarget): void {
    const { hbPrev: prev, hbNext: next } = t;
    if (prev === undefined) this.head = next;
    else prev.hbNext = next;
    if (next === undefined) this.tail = prev;
    else next.hbPrev = prev;
    t.hbPrev = t.hbNext = undefined;
  }
}

export class HeartbeatWheel {
  private readonly pingInterval: number;
  private readonly pingTimeout: number;
  /** How early a ping may leave to share a tick with others. */
  private readonly resolution: number;
  private readonly pings = new TargetList();
  private readonly pongs = new TargetList();
  private timer: NodeJS.Timeout | undefined;
  /** The time the timer is armed for. */
  private armedFor = Number.POSITIVE_INFINITY;

  constructor(pingInterval: number, pingTimeout: number) {
    this.pingInterval = pingInterval;
    this.pingTimeout = pingTimeout;
    this.resolution = Math.max(
      5,
      Math.min(1000, Math.floor(Math.min(pingInterval, pingTimeout) / 10)),
    );
  }

  /** Starts the heartbeat of a newly opened session: its first ping is due in pingInterval. */
  add(t: HeartbeatTarget): void {
    const now = performance.now();
    t.pongDeadline = 0;
    t.nextPingAt = Math.floor(now) + this.pingInterval;
    if (this.pings.push(t)) this.arm(t.nextPingAt, now);
  }

  /** A pong (or any sign of life the protocol counts) arrived: next ping in pingInterval. */
  pong(t: HeartbeatTarget): void {
    if (t.nextPingAt === 0 && t.pongDeadline === 0) return; // not on the wheel (closed)
    (t.pongDeadline !== 0 ? this.pongs : this.pings).remove(t);
    this.add(t);
  }

  /** Takes a session off the wheel. Idempotent. */
  delete(t: HeartbeatTarget): void {
    if (t.nextPingAt === 0 && t.pongDeadline === 0) return;
    (t.pongDeadline !== 0 ? this.pongs : this.pings).remove(t);
    t.nextPingAt = t.pongDeadline = 0;
  }

  /**
   * Closes `t` with "ping timeout" if its deadline has passed though the timer has not
   * fired yet (it fires a little late under load): a request arriving after the deadline
   * must find the session gone. True if it was closed.
   */
  expire(t: HeartbeatTarget): boolean {
    if (t.pongDeadline === 0 || performance.now() < t.pongDeadline) return false;
    this.delete(t);
    t.onPingTimeout();
    return true;
  }

  /** Serves what is due; exposed for the module-level timer callback. */
  tick(): void {
    this.timer = undefined;
    this.armedFor = Number.POSITIVE_INFINITY;
    const now = performance.now();
    try {
      const pongs = this.pongs;
      for (let t = pongs.head; t !== undefined && t.pongDeadline <= now; t = pongs.head) {
        this.delete(t);
        t.onPingTimeout();
      }
      const pings = this.pings;
      const horizon = now + this.resolution;
      for (let t = pings.head; t !== undefined && t.nextPingAt <= horizon; t = pings.head) {
        pings.remove(t);
        // From when the ping was due, not from this tick: never later than promised.
        t.pongDeadline = Math.max(
          t.nextPingAt + this.pingTimeout,
          Math.floor(now + this.pingTimeout / 2),
        );
        t.nextPingAt = 0;
        pongs.push(t);
        t.sendPing();
      }
    } finally {
      // A throwing close listener must not stop the heartbeat of every other session.
      this.rearm(now);
    }
  }

  close(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Number.POSITIVE_INFINITY;
    for (const list of [this.pings, this.pongs]) {
      for (let t = list.head; t !== undefined; t = list.head) this.delete(t);
    }
  }

  private rearm(now: number): void {
    let due = Number.POSITIVE_INFINITY;
    const ping = this.pings.head;
    if (ping !== undefined) due = ping.nextPingAt;
    const pong = this.pongs.head;
    if (pong !== undefined && pong.pongDeadline < due) due = pong.pongDeadline;
    if (due !== Number.POSITIVE_INFINITY) this.arm(due, now);
  }

  /** Makes sure the timer fires by `due` (appends never need an earlier one than armed). */
  private arm(due: number, now: number): void {
    if (this.timer !== undefined) {
      if (due >= this.armedFor) return;
      clearTimeout(this.timer);
    }
    this.armedFor = due;
    // Node may fire up to a millisecond early by our clock: the tick then re-arms.
    this.timer = setTimeout(tick, Math.max(1, Math.ceil(due - now)), this);
    this.timer.unref();
  }
}

function tick(wheel: HeartbeatWheel): void {
  wheel.tick();
}
