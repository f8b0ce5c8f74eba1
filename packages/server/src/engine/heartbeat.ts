/**
 * One timer per engine drives every session's heartbeat, instead of two timers per
 * session: each tick scans the sessions and pings those that are due or closes those
 * whose pong is overdue. A scan of 20k sessions costs well under a millisecond; the
 * tick resolution is a tenth of the shorter heartbeat setting (5 ms – 1 s), which keeps
 * pings well within the client's own `pingInterval + pingTimeout` allowance.
 */

/** What the wheel needs from a session. */
export interface HeartbeatTarget {
  /** Time (ms, monotonic) the next ping is due; 0 while a pong is awaited. */
  nextPingAt: number;
  /** Time the awaited pong is overdue; 0 when none is awaited. */
  pongDeadline: number;
  sendPing(now: number): void;
  onPingTimeout(): void;
}

export class HeartbeatWheel {
  private readonly members = new Set<HeartbeatTarget>();
  private timer: NodeJS.Timeout | undefined;
  private readonly resolution: number;

  constructor(pingInterval: number, pingTimeout: number) {
    this.resolution = Math.max(
      5,
      Math.min(1000, Math.floor(Math.min(pingInterval, pingTimeout) / 10)),
    );
  }

  add(target: HeartbeatTarget): void {
    this.members.add(target);
    if (this.timer === undefined) {
      this.timer = setInterval(tick, this.resolution, this);
      this.timer.unref();
    }
  }

  delete(target: HeartbeatTarget): void {
    this.members.delete(target);
    if (this.members.size === 0 && this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /** Visits every session once; exposed for the module-level tick function. */
  scan(now: number): void {
    for (const s of this.members) {
      if (s.pongDeadline !== 0) {
        if (now >= s.pongDeadline) s.onPingTimeout();
      } else if (now >= s.nextPingAt) {
        s.sendPing(now);
      }
    }
  }

  close(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.members.clear();
  }
}

function tick(wheel: HeartbeatWheel): void {
  wheel.scan(performance.now());
}
