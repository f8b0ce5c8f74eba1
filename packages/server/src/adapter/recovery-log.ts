/**
 * Connection state recovery across nodes: the durable log the cluster adapter writes
 * every recoverable broadcast to, and keeps sessions in, so a client whose node died
 * can recover on another one (docs/recovery.md, "Across nodes"). The server package
 * only defines the interface; `@switchyard/redis` implements it over Redis Streams
 * (`RedisRecoveryLog`). Entries and sessions are opaque bytes to a log: this module
 * encodes and checks them (nothing read back from the log is trusted).
 *
 * Offsets have one format for every log, `<epoch>:<n>:<id>`: the log's epoch (a
 * random id that changes when the log loses its history — a flushed or restarted
 * Redis), the entry's ordinal `n` (1, 2, 3, … within the namespace: offsets are
 * ordered by it, and it tells whether anything between two entries is missing) and the
 * log's own id of the entry (a Redis stream id). An offset need not be secret: a
 * restore only ever returns the entries after it that reached the session's own rooms,
 * as a live delivery would have. Session ids (pids) are the secret.
 */
import {
  type ClusterBroadcast,
  decodeClusterBroadcast,
  decodeControlMessage,
  encodeClusterBroadcast,
  encodeControlMessage,
  type SocketPacket,
} from "@switchyard/protocol";
import type { BroadcastOptions, PersistedSession, Room } from "./adapter.js";
import { eventPacket, toTarget } from "./cluster-support.js";

/** What a log is told about the namespace it serves when it is opened. */
export interface RecoveryLogSettings {
  /** `connectionStateRecovery.maxDisconnectionDuration`: how long a session may be recovered. */
  readonly window: number;
  /** Milliseconds without a heartbeat after which a node counts as dead (the cluster's `heartbeatTimeout`). */
  readonly nodeTimeout: number;
}

/**
 * A durable log shared by the nodes of a cluster (the `recovery` option of
 * `createAdapter`). Each cluster adapter (one per namespace and node) opens its own
 * handle at init.
 */
export interface RecoveryLog {
  open(nsp: string, node: string, settings: RecoveryLogSettings): RecoveryLogHandle;
}

/** Why a read found nothing to replay. */
export type LogGone =
  /** The offset belongs to another epoch: the log lost its history since (flushed, restarted Redis). */
  | "epoch"
  /** The offset's entry is no longer held (trimmed by length or age), or never was. */
  | "trimmed"
  /** More entries after the offset than a read returns. */
  | "overflow";

/** What a read returns: the entries after the offset, oldest first, or why there are none to trust. */
export type LogRead =
  | { readonly entries: readonly (readonly [offset: string, entry: Buffer])[] }
  | { readonly gone: LogGone };

/** What taking a session returns. */
export type LogTake =
  /** The session, now removed from the log. */
  | { readonly snapshot: Buffer }
  /**
   * The session is the live state of a node that still looks alive: it may have died
   * a moment ago, or not noticed the client left yet. Ask again after `waitMs`.
   */
  | { readonly waitMs: number }
  /** No such session (never issued, already taken, expired with its window). */
  | null;

/** One namespace's log, as one node uses it. */
export interface RecoveryLogHandle {
  /**
   * Appends a broadcast and resolves with its offset. `resetEpoch`: this node could not
   * log a broadcast (the log failed, or too many appends were pending), so offsets from
   * before it must stop being recoverable: the log starts a new epoch first.
   */
  append(entry: Buffer, resetEpoch: boolean): Promise<string>;
  /** The entries after `offset` (one bounded lookup for an offset it does not hold). */
  read(offset: string): Promise<LogRead>;
  /**
   * The live state of this node's connected sessions, kept so they survive this node's
   * death: `upserts` by pid, and pids to forget.
   */
  saveLive(
    upserts: readonly (readonly [pid: string, snapshot: Buffer])[],
    removals: readonly string[],
  ): Promise<void>;
  /** A session that lost its connection: kept for `window`, replacing its live state. */
  persist(pid: string, snapshot: Buffer): Promise<void>;
  /** Takes session `pid` out of the log (it is consumed: a second take finds nothing). */
  take(pid: string): Promise<LogTake>;
  /**
   * This node is alive (called every heartbeat interval): keeps its live sessions.
   * `resetEpoch` as for {@link append}. Resolves with the log's epoch (created if the
   * log has none: a flushed or restarted Redis).
   */
  heartbeat(resetEpoch: boolean): Promise<string>;
  /** Stops using the handle (the log's connection is its owner's to close). */
  close(): Promise<void>;
}

// ——— offsets ———

const OFFSET_RE = /^([A-Za-z0-9_-]{1,32}):(\d{1,15}):([0-9A-Za-z_-]{1,40})$/;

/** A parsed offset. */
export interface Offset {
  readonly epoch: string;
  /** The entry's ordinal in its namespace's log (1, 2, 3, …). */
  readonly n: number;
  /** The log's id of the entry. */
  readonly id: string;
}

/** Parses `<epoch>:<n>:<id>`; undefined for anything else (no lookup is made for it). */
export function parseOffset(offset: unknown): Offset | undefined {
  if (typeof offset !== "string" || offset.length > 96) return undefined;
  const m = OFFSET_RE.exec(offset);
  if (m === null) return undefined;
  return { epoch: m[1]!, n: Number(m[2]), id: m[3]! };
}

/** Whether `a` comes after `b` (same epoch assumed). */
export function isAfter(a: Offset, b: Offset): boolean {
  return a.n > b.n;
}

/** A pid worth a lookup: what our sockets issue is 20 characters; nothing longer than 128 is looked up. */
export function plausiblePid(pid: unknown): pid is string {
  return typeof pid === "string" && pid.length > 0 && pid.length <= 128;
}

// ——— entries ———

/** A recoverable broadcast as logged: socket.io's broadcast message (without its offset). */
export function encodeEntry(uid: string, packet: SocketPacket, opts: BroadcastOptions): Buffer {
  return encodeClusterBroadcast({
    uid,
    packet: eventPacket(packet),
    opts: { ...toTarget(opts), flags: {} },
  });
}

/** Decodes a logged broadcast; throws ProtocolError for bytes that are not one. */
export function decodeEntry(entry: Buffer): ClusterBroadcast {
  return decodeClusterBroadcast(entry);
}

/** Whether a broadcast to `rooms` minus `except` reached a socket in `mine` (its rooms, its id among them). */
export function reaches(
  rooms: readonly Room[] | ReadonlySet<Room>,
  except: readonly Room[] | ReadonlySet<Room> | undefined,
  mine: ReadonlySet<Room>,
): boolean {
  if (except !== undefined) for (const room of except) if (mine.has(room)) return false;
  let any = false;
  for (const room of rooms) {
    any = true;
    if (mine.has(room)) return true;
  }
  return !any;
}

// ——— sessions ———

/**
 * A session as kept in the log: the cluster's `fetch-res` message carrying one socket
 * (its id, rooms and data; its mark, if any, in place of the handshake), so it is encoded
 * and validated like every socket that crosses the bus. `data` that cannot be encoded is
 * kept as null.
 */
export function encodeSession(node: string, session: Omit<PersistedSession, "pid">): Buffer {
  const handshake = session.mark === undefined ? {} : { mark: session.mark };
  const info = { id: session.sid, handshake, rooms: session.rooms, data: session.data };
  try {
    return encodeControlMessage({ type: "fetch-res", uid: node, rid: "session", sockets: [info] });
  } catch {
    return encodeControlMessage({
      type: "fetch-res",
      uid: node,
      rid: "session",
      sockets: [{ ...info, data: null }],
    });
  }
}

/** Decodes a kept session; undefined for bytes that are not one. */
export function decodeSession(
  pid: string,
  bytes: Buffer,
): (Omit<PersistedSession, "pid"> & { pid: string }) | undefined {
  try {
    const msg = decodeControlMessage(bytes);
    if (msg.type !== "fetch-res" || msg.sockets.length !== 1) return undefined;
    const s = msg.sockets[0]!;
    const mark = s.handshake.mark;
    return {
      sid: s.id,
      pid,
      rooms: s.rooms,
      data: s.data,
      ...(typeof mark === "string" ? { mark } : {}),
    };
  } catch {
    return undefined;
  }
}
