/**
 * Connection state recovery on one node: a bounded, time-ordered log of the packets a
 * disconnected client may have missed, and the table of disconnected sessions.
 *
 * Offsets are `<sequence in base36>.<120 random bits>`: the sequence finds the entry in
 * O(1) (its index from the oldest one held), the random part must match it, so an offset
 * cannot be guessed or forged, and a bogus one costs one lookup. Retention is bounded by
 * age (`maxDisconnectionDuration`), count (`maxPackets`) and encoded bytes (`maxBytes`),
 * trimmed on append and by one unref'd sweep timer per log — no timer per packet.
 */
import { randomBytes } from "node:crypto";
import type {
  BroadcastOptions,
  PersistedSession,
  RecoveredSession,
  RecoveryMissReason,
  RecoveryOptions,
  Room,
} from "./adapter.js";

/**
 * Rooms of a kept packet: undefined for none (every socket), the room itself for one
 * (most broadcasts), else the Set. A broadcast operator makes fresh Sets per emit, and an
 * empty Set held per packet costs more than the rest of the entry.
 */
type Rooms = undefined | Room | ReadonlySet<Room>;

function compact(rooms: ReadonlySet<Room> | undefined): Rooms {
  if (rooms === undefined || rooms.size === 0) return undefined;
  if (rooms.size === 1) for (const room of rooms) return room;
  return rooms;
}

function has(rooms: Room | ReadonlySet<Room>, room: Room): boolean {
  return typeof rooms === "string" ? rooms === room : rooms.has(room);
}

interface LogEntry {
  readonly seq: number;
  readonly offset: string;
  readonly at: number;
  readonly rooms: Rooms;
  readonly except: Rooms;
  /** `[event, ...args, offset]`, as replayed. */
  readonly data: unknown[];
  readonly bytes: number;
}

interface HeldSession {
  readonly session: PersistedSession;
  readonly at: number;
}

/** What a memory log holds (read by tests and the bench). */
export interface RecoveryLogStats {
  /** Packets held. */
  packets: number;
  /** Encoded bytes of the packets held. */
  bytes: number;
  /** Disconnected sessions held. */
  sessions: number;
}

/** Longest pid or offset looked at: anything longer is not one of ours. */
const MAX_ID_LENGTH = 64;
/** The random part of offsets and pids: `randomId()`'s 20 base64url characters. */
const RANDOM_LENGTH = 20;
/** Sweeps at least this often (and at most every `maxDisconnectionDuration`). */
const SWEEP_MS = 60_000;

/**
 * Random parts of offsets: 120 bits each, cut from one base64url string of 2,048 of them
 * (15 bytes = 20 characters, so each slice is whole bytes). One CSPRNG call and one
 * conversion per 2,048 offsets instead of two native calls per broadcast. (Pids, which
 * must stay secret, come from `randomId()`, whose pool is wiped as it is used; an
 * offset is seen by every client the packet reaches.)
 */
const OFFSETS_PER_POOL = 2048;
let offsetPool = "";
let offsetAt = 0;

function randomPart(): string {
  if (offsetAt >= offsetPool.length) {
    offsetPool = randomBytes(15 * OFFSETS_PER_POOL).toString("base64url");
    offsetAt = 0;
  }
  const part = offsetPool.slice(offsetAt, offsetAt + RANDOM_LENGTH);
  offsetAt += RANDOM_LENGTH;
  return part;
}

/** Restores a session or says why not. */
export type RestoreResult = RecoveredSession | RecoveryMissReason;

export class MemoryRecoveryLog {
  private readonly opts: RecoveryOptions;
  /** Entries, oldest first, from `head` on (the slots before it are dropped ones). */
  private entries: (LogEntry | undefined)[] = [];
  private head = 0;
  private nextSeq = 0;
  private heldBytes = 0;
  /** By pid, in order of disconnection (so expired ones are at the front). */
  private readonly sessions = new Map<string, HeldSession>();
  private timer: NodeJS.Timeout | undefined = undefined;

  constructor(opts: RecoveryOptions) {
    this.opts = opts;
  }

  get stats(): RecoveryLogStats {
    return {
      packets: this.entries.length - this.head,
      bytes: this.heldBytes,
      sessions: this.sessions.size,
    };
  }

  /** A fresh offset, to be appended to the packet's data before it is encoded. */
  nextOffset(): string {
    return `${this.nextSeq.toString(36)}.${randomPart()}`;
  }

  /**
   * Keeps the packet whose data ends with `offset` (from {@link nextOffset}, called just
   * before): `bytes` is its encoded size.
   */
  append(offset: string, data: unknown[], opts: BroadcastOptions, bytes: number): void {
    const now = Date.now();
    this.entries.push({
      seq: this.nextSeq++,
      offset,
      at: now,
      rooms: compact(opts.rooms),
      except: compact(opts.except),
      data,
      bytes,
    });
    this.heldBytes += bytes;
    this.trim(now);
    this.startSweeping();
  }

  persist(session: PersistedSession): void {
    this.sessions.set(session.pid, { session, at: Date.now() });
    this.startSweeping();
  }

  /**
   * Where the log stands now: `#<next sequence>`, kept in a session (never sent to a
   * client, never accepted from one) to replay from when its client has no offset.
   */
  mark(): string {
    return `#${this.nextSeq}`;
  }

  /**
   * The session `pid` with every held packet after `offset` (or, if `offset` is empty,
   * from the session's mark) that reached its rooms, in order; the session is consumed
   * (a second call with the same pid finds nothing).
   */
  restore(pid: string, offset: string): RestoreResult {
    if (pid.length > MAX_ID_LENGTH) return "unknown-session";
    const held = this.sessions.get(pid);
    if (held === undefined) return "unknown-session";
    this.sessions.delete(pid);
    const now = Date.now();
    if (held.at + this.opts.maxDisconnectionDuration < now) return "expired";
    this.trim(now);
    const session = held.session;
    const start =
      offset !== ""
        ? this.indexAfter(offset)
        : session.mark === undefined
          ? -1
          : this.indexOfMark(session.mark);
    if (start === -1) return "offset";
    const rooms = session.rooms;
    const missed = this.collect(start, rooms);
    return { sid: session.sid, pid: session.pid, rooms, data: session.data, missedPackets: missed };
  }

  /** The held packets from mark `#<seq>` on that reached `rooms`; undefined if some were dropped. */
  since(mark: string, rooms: readonly Room[]): unknown[][] | undefined {
    this.trim(Date.now());
    const start = this.indexOfMark(mark);
    return start === -1 ? undefined : this.collect(start, rooms);
  }

  private collect(start: number, rooms: readonly Room[]): unknown[][] {
    const missed: unknown[][] = [];
    const entries = this.entries;
    for (let i = start; i < entries.length; i++) {
      const entry = entries[i]!;
      if (reaches(entry, rooms)) missed.push(entry.data);
    }
    return missed;
  }

  /** The index of the entry after the one with `offset`, or -1 if it is not held. */
  private indexAfter(offset: string): number {
    if (offset.length > MAX_ID_LENGTH) return -1;
    const dot = offset.indexOf(".");
    if (dot < 1 || offset.length - dot - 1 !== RANDOM_LENGTH) return -1;
    const seq = Number.parseInt(offset.slice(0, dot), 36);
    const first = this.entries[this.head];
    const base = first === undefined ? this.nextSeq : first.seq;
    const i = this.head + (seq - base);
    if (!Number.isSafeInteger(seq) || i < this.head || i >= this.entries.length) return -1;
    return this.entries[i]!.offset === offset ? i + 1 : -1;
  }

  /** The index of the first entry at or after mark `#<seq>`, or -1 if some were dropped. */
  private indexOfMark(mark: string): number {
    const seq = Number.parseInt(mark.slice(1), 10);
    if (mark[0] !== "#" || !Number.isSafeInteger(seq)) return -1;
    const first = this.entries[this.head];
    const base = first === undefined ? this.nextSeq : first.seq;
    const i = this.head + (seq - base);
    return i < this.head || i > this.entries.length ? -1 : i;
  }

  /** Drops the oldest entries past the age, count or byte bound. */
  private trim(now: number): void {
    const oldest = now - this.opts.maxDisconnectionDuration;
    const { maxPackets, maxBytes } = this.opts;
    const entries = this.entries;
    let head = this.head;
    while (head < entries.length) {
      const entry = entries[head]!;
      if (entry.at >= oldest && entries.length - head <= maxPackets && this.heldBytes <= maxBytes)
        break;
      this.heldBytes -= entry.bytes;
      entries[head] = undefined;
      head++;
    }
    if (head === entries.length) {
      this.entries = [];
      head = 0;
    } else if (head >= 1024 && head * 2 >= entries.length) {
      // Amortized O(1): the dropped slots are cut off once they are half the array.
      this.entries = entries.slice(head);
      head = 0;
    }
    this.head = head;
  }

  private sweep(): void {
    const now = Date.now();
    this.trim(now);
    const oldest = now - this.opts.maxDisconnectionDuration;
    for (const [pid, held] of this.sessions) {
      if (held.at >= oldest) break;
      this.sessions.delete(pid);
    }
    if (this.sessions.size === 0 && this.entries.length === this.head) this.stopSweeping();
  }

  private startSweeping(): void {
    if (this.timer !== undefined) return;
    const every = Math.min(SWEEP_MS, Math.max(1000, this.opts.maxDisconnectionDuration));
    this.timer = setInterval(sweepLog, every, this);
    this.timer.unref();
  }

  private stopSweeping(): void {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Forgets everything and stops the sweep timer. */
  close(): void {
    this.stopSweeping();
    this.entries = [];
    this.head = 0;
    this.heldBytes = 0;
    this.sessions.clear();
  }

  /** @internal called by the sweep timer */
  static sweep(log: MemoryRecoveryLog): void {
    log.sweep();
  }
}

function sweepLog(log: MemoryRecoveryLog): void {
  MemoryRecoveryLog.sweep(log);
}

/** Whether a packet sent to `entry`'s rooms minus its except rooms reached a socket in `rooms`. */
function reaches(entry: LogEntry, rooms: readonly Room[]): boolean {
  const except = entry.except;
  if (except !== undefined) for (const room of rooms) if (has(except, room)) return false;
  const to = entry.rooms;
  if (to === undefined) return true;
  for (const room of rooms) if (has(to, room)) return true;
  return false;
}
