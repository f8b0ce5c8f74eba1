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
  // The packets, oldest first, as parallel columns (no object per packet, times unboxed):
  // slot `i` holds sequence number `headSeq + i - head`; slots before `head` are dropped.
  private offsets: (string | undefined)[] = [];
  private times: number[] = [];
  private toRooms: Rooms[] = [];
  private excepts: Rooms[] = [];
  /** `[event, ...args, offset]`, as replayed. */
  private datas: (unknown[] | undefined)[] = [];
  private sizes: number[] = [];
  private head = 0;
  private headSeq = 0;
  private heldBytes = 0;
  /** By pid, in order of disconnection (so expired ones are at the front). */
  private readonly sessions = new Map<string, HeldSession>();
  private timer: NodeJS.Timeout | undefined = undefined;

  constructor(opts: RecoveryOptions) {
    this.opts = opts;
  }

  get stats(): RecoveryLogStats {
    return {
      packets: this.offsets.length - this.head,
      bytes: this.heldBytes,
      sessions: this.sessions.size,
    };
  }

  /** A fresh offset, to be appended to the packet's data before it is encoded. */
  nextOffset(): string {
    return `${this.nextSeq.toString(36)}.${randomPart()}`;
  }

  /** The sequence number the next packet gets. */
  private get nextSeq(): number {
    return this.headSeq + this.offsets.length - this.head;
  }

  /**
   * Keeps the packet whose data ends with `offset` (from {@link nextOffset}, called just
   * before): `bytes` is its encoded size.
   */
  append(offset: string, data: unknown[], opts: BroadcastOptions, bytes: number): void {
    const now = Date.now();
    this.offsets.push(offset);
    this.times.push(now);
    this.toRooms.push(compact(opts.rooms));
    this.excepts.push(compact(opts.except));
    this.datas.push(data);
    this.sizes.push(bytes);
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
    const { toRooms, excepts, datas } = this;
    for (let i = start; i < datas.length; i++) {
      if (reaches(toRooms[i], excepts[i], rooms)) missed.push(datas[i]!);
    }
    return missed;
  }

  /** The index of the entry after the one with `offset`, or -1 if it is not held. */
  private indexAfter(offset: string): number {
    if (offset.length > MAX_ID_LENGTH) return -1;
    const dot = offset.indexOf(".");
    if (dot < 1 || offset.length - dot - 1 !== RANDOM_LENGTH) return -1;
    const seq = Number.parseInt(offset.slice(0, dot), 36);
    const i = this.head + (seq - this.headSeq);
    if (!Number.isSafeInteger(seq) || i < this.head || i >= this.offsets.length) return -1;
    return this.offsets[i] === offset ? i + 1 : -1;
  }

  /** The index of the first entry at or after mark `#<seq>`, or -1 if some were dropped. */
  private indexOfMark(mark: string): number {
    const seq = Number.parseInt(mark.slice(1), 10);
    if (mark[0] !== "#" || !Number.isSafeInteger(seq)) return -1;
    const i = this.head + (seq - this.headSeq);
    return i < this.head || i > this.offsets.length ? -1 : i;
  }

  /** Drops the oldest entries past the age, count or byte bound. */
  private trim(now: number): void {
    const oldest = now - this.opts.maxDisconnectionDuration;
    const { maxPackets, maxBytes } = this.opts;
    const { offsets, times, toRooms, excepts, datas, sizes } = this;
    const length = offsets.length;
    let head = this.head;
    while (head < length) {
      if (times[head]! >= oldest && length - head <= maxPackets && this.heldBytes <= maxBytes)
        break;
      this.heldBytes -= sizes[head]!;
      offsets[head] = undefined;
      toRooms[head] = undefined;
      excepts[head] = undefined;
      datas[head] = undefined;
      head++;
    }
    this.headSeq += head - this.head;
    if (head === length) this.clear();
    else if (head >= 1024 && head * 2 >= length) {
      // Amortized O(1): the dropped slots are cut off once they are half the columns.
      this.offsets = offsets.slice(head);
      this.times = times.slice(head);
      this.toRooms = toRooms.slice(head);
      this.excepts = excepts.slice(head);
      this.datas = datas.slice(head);
      this.sizes = sizes.slice(head);
      this.head = 0;
    } else this.head = head;
  }

  /** Empties the columns (the sequence goes on). */
  private clear(): void {
    this.offsets = [];
    this.times = [];
    this.toRooms = [];
    this.excepts = [];
    this.datas = [];
    this.sizes = [];
    this.head = 0;
  }

  private sweep(): void {
    const now = Date.now();
    this.trim(now);
    const oldest = now - this.opts.maxDisconnectionDuration;
    for (const [pid, held] of this.sessions) {
      if (held.at >= oldest) break;
      this.sessions.delete(pid);
    }
    if (this.sessions.size === 0 && this.offsets.length === this.head) this.stopSweeping();
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
    this.headSeq = this.nextSeq;
    this.clear();
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

/** Whether a packet sent to `to` minus `except` reached a socket in `rooms`. */
function reaches(to: Rooms, except: Rooms, rooms: readonly Room[]): boolean {
  if (except !== undefined) for (const room of rooms) if (has(except, room)) return false;
  if (to === undefined) return true;
  for (const room of rooms) if (has(to, room)) return true;
  return false;
}
