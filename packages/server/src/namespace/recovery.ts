/**
 * Connection state recovery at the namespace: which disconnects keep a session, how a
 * reconnecting client's `{ pid, offset }` is looked up through the adapter, and the
 * counters that say how it went (socket.io 4.8's `connectionStateRecovery`).
 */
import type {
  Adapter,
  RecoveredSession,
  RecoveryMissReason,
  RecoveryOptions,
} from "../adapter/adapter.js";

/** Recovery counters (in `io.stats`). */
export interface RecoveryCounters {
  /** Sockets that recovered their session (`socket.recovered === true`). */
  recovered: number;
  /** Reconnects that presented a `pid` (with or without offset) but got a fresh session. */
  recoveryMisses: number;
  /** … because the pid was unknown: never issued, already used, or swept after the window. */
  recoveryMissesUnknownSession: number;
  /** … because the session was disconnected longer than `maxDisconnectionDuration`. */
  recoveryMissesExpired: number;
  /** … because the offset is no longer (or never was) in the log: trimmed by a bound, too old, forged. */
  recoveryMissesOffset: number;
  /** … because the adapter's `restoreSession` failed (threw or rejected). */
  recoveryMissesError: number;
  /** … because the log was reset since the offset was issued (a durable log wiped or restarted). */
  recoveryMissesEpoch: number;
}

/** The counters at zero. */
export function recoveryCounters(): RecoveryCounters {
  return {
    recovered: 0,
    recoveryMisses: 0,
    recoveryMissesUnknownSession: 0,
    recoveryMissesExpired: 0,
    recoveryMissesOffset: 0,
    recoveryMissesError: 0,
    recoveryMissesEpoch: 0,
  };
}

/** Counts why a session could not be restored (the total is counted by {@link restore}). */
export function countMiss(counters: RecoveryCounters, reason: RecoveryMissReason): void {
  switch (reason) {
    case "unknown-session":
      counters.recoveryMissesUnknownSession++;
      return;
    case "expired":
      counters.recoveryMissesExpired++;
      return;
    case "offset":
      counters.recoveryMissesOffset++;
      return;
    case "error":
      counters.recoveryMissesError++;
      return;
    case "epoch":
      counters.recoveryMissesEpoch++;
      return;
  }
}

/** Disconnect reasons after which a session is kept (socket.io's list). */
export const RECOVERABLE_DISCONNECT_REASONS: ReadonlySet<string> = new Set([
  "transport error",
  "transport close",
  "forced close",
  "ping timeout",
  "server shutting down",
  "forced server close",
]);

/** Default and bounds of `connectionStateRecovery`. */
export const RECOVERY_DEFAULTS: RecoveryOptions = Object.freeze({
  maxDisconnectionDuration: 2 * 60 * 1000,
  skipMiddlewares: true,
  maxPackets: 10_000,
  maxBytes: 16 * 1024 * 1024,
});

/**
 * The `{ pid, offset }` a socket.io client (4.6+) adds to its CONNECT payload when it has
 * a session, or undefined when it presents none. A client that received no packet yet
 * sends a pid without offset: `offset` is then "" (restored from the session's mark).
 */
export function recoveryRequest(
  auth: Record<string, unknown> | undefined,
): { pid: string; offset: string } | undefined {
  if (auth === undefined || auth === null) return undefined;
  const pid = auth.pid;
  const offset = auth.offset;
  if (typeof pid !== "string") return undefined;
  if (offset === undefined) return { pid, offset: "" };
  if (typeof offset !== "string") return undefined;
  return { pid, offset };
}

/**
 * Asks the adapter for session `pid` after `offset`; calls `done` with it, or with
 * undefined (counted as a miss). Synchronously when the adapter answers synchronously
 * (the memory adapter does: no broadcast can slip between its read and the socket's
 * return to its rooms).
 */
export function restore(
  adapter: Adapter,
  pid: string,
  offset: string,
  counters: RecoveryCounters,
  done: (session: RecoveredSession | undefined) => void,
): void {
  const settle = (session: RecoveredSession | null | undefined) => {
    if (session === null || session === undefined || !wellFormed(session)) {
      if (session !== null && session !== undefined) countMiss(counters, "error");
      counters.recoveryMisses++;
      done(undefined);
      return;
    }
    done(session);
  };
  // A thrown Error is a failure; socket.io's Redis Streams adapter rejects with a plain
  // string ("session or offset not found") to say "no session": a miss without a reason.
  const fail = (err: unknown) => {
    if (err instanceof Error) countMiss(counters, "error");
    settle(undefined);
  };
  if (adapter.restoreSession === undefined) {
    settle(undefined);
    return;
  }
  let result: ReturnType<NonNullable<Adapter["restoreSession"]>>;
  try {
    result = adapter.restoreSession(pid, offset);
  } catch (err) {
    fail(err);
    return;
  }
  if (result !== null && typeof (result as Promise<unknown>).then === "function") {
    (result as Promise<RecoveredSession | null | undefined>).then(settle, fail);
    return;
  }
  settle(result as RecoveredSession | null | undefined);
}

/** A session from any adapter has the shape a socket is restored from. */
function wellFormed(session: RecoveredSession): boolean {
  return (
    typeof session.sid === "string" &&
    session.sid.length > 0 &&
    typeof session.pid === "string" &&
    Array.isArray(session.rooms) &&
    Array.isArray(session.missedPackets)
  );
}
