/**
 * The cluster adapter's side of connection state recovery over a durable log
 * ({@link RecoveryLog}, e.g. `@switchyard/redis`'s `RedisRecoveryLog`): what makes a
 * client whose node was killed recover on another node. docs/recovery.md ("Across
 * nodes") gives the reasons; in short:
 *
 * - A recoverable broadcast is appended first; its offset is then appended to its
 *   arguments, and it is delivered here and published on the bus with the offset in
 *   it, so receivers deliver it as is. Appends are pipelined; a queue keeps this node's
 *   broadcasts (logged or not) in the order they were made.
 * - A broadcast that cannot be logged (the log failed, or {@link MAX_PENDING} appends
 *   are waiting) is still delivered, without offset, and the log's epoch is reset, so
 *   no session recovers across it: a detected gap, never a silent one.
 * - A SIGKILLed node never persists its sessions, so the live state of every connected
 *   session (pid → id, rooms, data) is written to the log on each room change, batched;
 *   a dead node's live sessions can be taken by another node during the window.
 * - A restore takes the session (consumed), reads the log after the client's offset,
 *   keeps what reached the session's rooms, plus what this node delivered while the
 *   read was on its way; for a while after, a broadcast from the bus the read already
 *   returned skips the restored socket (no duplicate).
 */
import type { SocketPacket } from "@switchyard/protocol";
import type {
  AdapterNamespace,
  BroadcastOptions,
  PersistedSession,
  RecoveredSession,
  RecoveryMissReason,
  Room,
  SocketId,
} from "./adapter.js";
import { isRecoverable } from "./memory-adapter.js";
import {
  decodeEntry,
  decodeSession,
  encodeEntry,
  encodeSession,
  isAfter,
  type LogGone,
  type Offset,
  parseOffset,
  plausiblePid,
  type RecoveryLog,
  type RecoveryLogHandle,
  reaches,
} from "./recovery-log.js";

/** Appends waiting for the log beyond which broadcasts go out unlogged (and the epoch is reset). */
export const MAX_PENDING = 10_000;
/** Milliseconds between a room change and the write of the session's live state. */
const SNAPSHOT_DELAY_MS = 20;
/** Live states written per batch. */
const SNAPSHOT_BATCH = 1000;
/** Broadcasts a restore collects while its read is on its way; more fails the restore. */
const MAX_CAPTURE = 10_000;
/** Milliseconds a restored socket skips bus broadcasts its read already returned. */
const FLOOR_MS = 10_000;
/** Milliseconds between tries of an epoch reset the log refused. */
const RESET_RETRY_MS = 100;

/** Counters of recovery over the log (one namespace on one node). */
export interface LogRecoveryStats {
  /** Broadcasts appended to the log. */
  appended: number;
  /** Appends the log refused or failed. */
  appendErrors: number;
  /** Broadcasts delivered without an offset (log failure or too many pending): the epoch is reset after them. */
  unlogged: number;
  /** Sessions restored from the log. */
  restored: number;
  /** Restores that waited for a node that still looked alive. */
  waits: number;
  /** Misses: no such session (unknown, already taken, expired with its node). */
  missSession: number;
  /** Misses: the offset's epoch is not the log's (Redis flushed or restarted, or a gap reset it). */
  missEpoch: number;
  /** Misses: the offset is no longer (or never was) in the log. */
  missTrimmed: number;
  /** Misses: more entries after the offset than a restore replays. */
  missOverflow: number;
  /** Misses: a pid or offset that is not one of ours (no lookup made). */
  missMalformed: number;
  /** Misses: the log failed, or returned something that does not decode. */
  missError: number;
  /** Live session states written; and writes that failed. */
  snapshots: number;
  snapshotErrors: number;
}

function newLogStats(): LogRecoveryStats {
  return {
    appended: 0,
    appendErrors: 0,
    unlogged: 0,
    restored: 0,
    waits: 0,
    missSession: 0,
    missEpoch: 0,
    missTrimmed: 0,
    missOverflow: 0,
    missMalformed: 0,
    missError: 0,
    snapshots: 0,
    snapshotErrors: 0,
  };
}

/** What the cluster adapter offers its log recovery. */
export interface LogRecoveryHost {
  readonly uid: string;
  readonly nsp: AdapterNamespace;
  /** Rooms by socket (the adapter's). */
  readonly sids: ReadonlyMap<SocketId, ReadonlySet<Room>>;
  /** Delivers `packet` to this node's sockets as it is (no offset stamped) and, unless local, publishes it. */
  sendBroadcast(packet: SocketPacket, opts: BroadcastOptions): void;
  /**
   * Receives the bus broadcasts of `rooms` from now on, also those this node holds no
   * socket in yet: `ready` once the broker confirmed; `release()` drops what is still
   * not held then.
   */
  watchRooms(rooms: readonly Room[]): { ready: Promise<void>; release(): void };
}

interface Pending {
  readonly packet: SocketPacket;
  readonly opts: BroadcastOptions;
  done: boolean;
  offset: string | undefined;
}

interface Captured {
  readonly offset: Offset;
  readonly data: unknown[];
  readonly rooms: ReadonlySet<Room>;
  readonly except: ReadonlySet<Room> | undefined;
}

interface Capture {
  readonly items: Captured[];
  overflow: boolean;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function noop(): void {}

export class LogRecovery {
  readonly stats: LogRecoveryStats = newLogStats();
  private readonly host: LogRecoveryHost;
  private readonly log: RecoveryLogHandle;
  private readonly nodeTimeout: number;
  private readonly queue: Pending[] = [];
  private head = 0;
  /** A broadcast went out unlogged: the next append (or heartbeat) starts a new epoch. */
  private resetEpoch = false;
  /** A heartbeat carrying an epoch reset is on its way. */
  private resetting = false;
  private retryTimer: NodeJS.Timeout | undefined = undefined;
  private readonly dirty = new Set<SocketId>();
  private removals: string[] = [];
  /** The pid whose live state was written, by socket id (to forget it on disconnect). */
  private readonly pidOf = new Map<SocketId, string>();
  private timer: NodeJS.Timeout | undefined = undefined;
  private readonly captures = new Set<Capture>();
  private readonly floors = new Map<SocketId, { offset: Offset; until: number }>();
  /**
   * Restores whose result is on its way to the namespace: this node's own broadcasts
   * wait (see {@link drain}) until the restored socket is back in its rooms; then the
   * room subscriptions the restores made are released.
   */
  private finishing = 0;
  private releases: (() => void)[] = [];
  /** The offset of the last logged broadcast delivered here (unchecked: see {@link mark}). */
  private lastSeen: string | undefined = undefined;
  /** Each connected socket's mark: where the log stood when it connected (see {@link mark}). */
  private readonly marks = new Map<SocketId, string>();
  /** The log's epoch as last seen (appends and heartbeats tell it). */
  private epoch: string | undefined = undefined;
  private closed = false;

  constructor(host: LogRecoveryHost, log: RecoveryLog, window: number, nodeTimeout: number) {
    this.host = host;
    this.nodeTimeout = nodeTimeout;
    this.log = log.open(host.nsp.name, host.uid, { window, nodeTimeout });
    this.heartbeat();
  }

  /**
   * The log's epoch changed (Redis flushed or restarted, or a reset): it lost the live
   * states too, so every local session's is written again. Their offsets are from the
   * old epoch (a detected miss); what they receive from now on recovers.
   */
  private sawEpoch(epoch: string): void {
    const before = this.epoch;
    this.epoch = epoch;
    if (before === undefined || before === epoch || this.closed) return;
    for (const id of this.host.nsp.sockets.keys()) this.dirty.add(id);
    this.schedule();
  }

  // ——— broadcasts ———

  /** A broadcast of this node: logged if recoverable, in order with the others. */
  broadcast(packet: SocketPacket, opts: BroadcastOptions): void {
    const loggable = opts.flags?.local !== true && isRecoverable(packet, opts);
    const waiting = this.queue.length - this.head;
    if (!loggable || waiting >= MAX_PENDING || this.closed) {
      if (loggable) this.unlogged();
      if (waiting === 0) this.host.sendBroadcast(packet, opts);
      else this.queue.push({ packet, opts, done: true, offset: undefined });
      return;
    }
    // Encoded now (throws to the caller for data that cannot travel, as without a log).
    const entry = encodeEntry(this.host.uid, packet, opts);
    const item: Pending = { packet, opts, done: false, offset: undefined };
    this.queue.push(item);
    const reset = this.resetEpoch;
    this.resetEpoch = false;
    this.log.append(entry, reset).then(
      (offset) => {
        this.stats.appended++;
        this.sawEpoch(offset.slice(0, offset.indexOf(":")));
        item.offset = offset;
        item.done = true;
        this.drain();
      },
      () => {
        this.stats.appendErrors++;
        this.unlogged();
        item.done = true;
        this.drain();
      },
    );
  }

  private unlogged(): void {
    this.stats.unlogged++;
    this.resetEpoch = true;
    // At once, not at the next append or heartbeat: until the reset, a restore elsewhere
    // would read across the gap.
    if (!this.resetting) this.heartbeat();
  }

  /**
   * Sends the queue's head while it is ready: this node's broadcasts leave in order.
   *
   * Not while a restore's result is on its way: an append answered on the log's
   * connection right after the restore's read resolves in the same microtask run, after
   * the restore stopped collecting but before the namespace put the socket back in its
   * rooms: delivered then, it would reach neither. The namespace does that in microtasks
   * (no I/O between), so waiting for the next macrotask is enough; bus messages are
   * macrotasks themselves and cannot slip in.
   */
  private drain(): void {
    if (this.finishing > 0) return;
    const queue = this.queue;
    while (this.head < queue.length && queue[this.head]!.done) {
      const item = queue[this.head]!;
      queue[this.head++] = undefined as unknown as Pending;
      if (item.offset === undefined) {
        this.host.sendBroadcast(item.packet, item.opts);
        continue;
      }
      this.lastSeen = item.offset;
      const data = [...(item.packet.data as unknown[]), item.offset];
      const stamped: SocketPacket = { ...item.packet, data };
      if (this.captures.size > 0) this.capture(item.offset, data, item.opts);
      // Held during a restore, it may be one that restore's read returned.
      const opts = this.floors.size === 0 ? item.opts : this.skipRestored(item.offset, item.opts);
      this.host.sendBroadcast(stamped, opts);
    }
    if (this.head === queue.length) {
      queue.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= queue.length) {
      // Never empty under sustained load: the sent slots are cut off once they are half.
      queue.splice(0, this.head);
      this.head = 0;
    }
  }

  /**
   * A broadcast from another node, about to be delivered here: collected by restores
   * under way, and kept from sockets restored with it already. Returns the options to
   * deliver it with.
   */
  received(packet: SocketPacket, opts: BroadcastOptions): BroadcastOptions {
    const data = packet.data as unknown[];
    const last = data[data.length - 1];
    if (typeof last === "string") this.lastSeen = last;
    if (this.captures.size === 0 && this.floors.size === 0) return opts;
    const offset = typeof last === "string" ? parseOffset(last) : undefined;
    if (offset === undefined) return opts;
    if (this.captures.size > 0) this.capture(last as string, data, opts);
    if (this.floors.size === 0) return opts;
    return this.skipRestored(last as string, opts, offset);
  }

  /** `opts` minus the sockets restored with the broadcast at `offsetText` already. */
  private skipRestored(
    offsetText: string,
    opts: BroadcastOptions,
    offset = parseOffset(offsetText),
  ): BroadcastOptions {
    if (offset === undefined) return opts;
    let except: Set<Room> | undefined;
    const now = Date.now();
    for (const [sid, floor] of this.floors) {
      if (floor.until < now) {
        this.floors.delete(sid);
        continue;
      }
      if (floor.offset.epoch === offset.epoch && !isAfter(offset, floor.offset)) {
        except ??= new Set(opts.except);
        except.add(sid);
      }
    }
    return except === undefined ? opts : { ...opts, except };
  }

  private capture(offsetText: string, data: unknown[], opts: BroadcastOptions): void {
    const offset = parseOffset(offsetText);
    if (offset === undefined) return;
    const except = opts.except !== undefined && opts.except.size > 0 ? opts.except : undefined;
    for (const c of this.captures) {
      if (c.items.length >= MAX_CAPTURE) c.overflow = true;
      else c.items.push({ offset, data, rooms: opts.rooms, except });
    }
  }

  // ——— live session states ———

  /**
   * Where the log stands for a socket connecting now: the last offset delivered here
   * (undefined before any, or if it is not one of ours). A client that received nothing
   * before it lost its connection presents no offset; it recovers from its session's mark.
   */
  mark(): string | undefined {
    return parseOffset(this.lastSeen) === undefined ? undefined : this.lastSeen;
  }

  /** Socket `id` joined or left a room: its live state is written soon. */
  changed(id: SocketId): void {
    if (this.closed) return;
    if (!this.marks.has(id)) {
      const mark = this.mark();
      if (mark !== undefined) this.marks.set(id, mark);
    }
    this.dirty.add(id);
    this.schedule();
  }

  /** Socket `id` left every room (it is gone): its live state is forgotten. */
  gone(id: SocketId): void {
    this.dirty.delete(id);
    this.marks.delete(id);
    const pid = this.pidOf.get(id);
    if (pid === undefined) return;
    this.pidOf.delete(id);
    this.removals.push(pid);
    this.schedule();
  }

  private schedule(): void {
    if (this.timer !== undefined || this.closed) return;
    this.timer = setTimeout(flushLater, SNAPSHOT_DELAY_MS, this);
    this.timer.unref();
  }

  /** @internal Writes the live states of the sockets that changed (a batch per call). */
  flush(): void {
    this.timer = undefined;
    const upserts: [string, Buffer][] = [];
    const sockets = this.host.nsp.sockets;
    for (const id of this.dirty) {
      if (upserts.length >= SNAPSHOT_BATCH) break;
      const socket = sockets.get(id);
      if (socket === undefined) {
        // Not admitted yet (its middleware runs): kept for the next batch; gone: dropped.
        if (!this.host.sids.has(id)) this.dirty.delete(id);
        continue;
      }
      this.dirty.delete(id);
      const pid = socket.pid;
      if (!plausiblePid(pid)) continue;
      this.pidOf.set(id, pid);
      const mark = this.marks.get(id);
      upserts.push([
        pid,
        encodeSession(this.host.uid, {
          sid: id,
          rooms: [...socket.rooms],
          data: socket.data,
          ...(mark === undefined ? {} : { mark }),
        }),
      ]);
    }
    const removals = this.removals;
    this.removals = [];
    if (upserts.length > 0 || removals.length > 0) {
      this.log.saveLive(upserts, removals).then(
        () => {
          this.stats.snapshots += upserts.length;
        },
        () => {
          this.stats.snapshotErrors++;
        },
      );
    }
    if (this.dirty.size > 0) this.schedule();
  }

  /** A session that lost its connection (a recoverable reason): kept in the log for the window. */
  persist(session: PersistedSession): Promise<void> {
    this.dirty.delete(session.sid);
    this.pidOf.delete(session.sid);
    const mark = session.mark ?? this.marks.get(session.sid);
    this.marks.delete(session.sid);
    if (!plausiblePid(session.pid)) return Promise.resolve();
    return this.log.persist(
      session.pid,
      encodeSession(this.host.uid, mark === undefined ? session : { ...session, mark }),
    );
  }

  /**
   * Heartbeat: this node is alive. An epoch reset still owed (a broadcast went out
   * unlogged and no append has carried the reset since) goes with it, so another
   * node's restore cannot read across the gap for long while this node is idle.
   */
  heartbeat(): void {
    if (this.closed) return;
    const reset = this.resetEpoch;
    this.resetEpoch = false;
    if (reset) this.resetting = true;
    this.log.heartbeat(reset).then(
      (epoch) => {
        if (reset) this.resetting = false;
        this.sawEpoch(epoch);
      },
      () => {
        if (!reset) return;
        this.resetting = false;
        this.resetEpoch = true;
        // Owed: tried again soon (the log is failing; one command per try).
        if (this.retryTimer === undefined && !this.closed) {
          this.retryTimer = setTimeout(retryReset, RESET_RETRY_MS, this);
          this.retryTimer.unref();
        }
      },
    );
  }

  /** @internal The retry timer of an epoch reset. */
  retryReset(): void {
    this.retryTimer = undefined;
    if (this.resetEpoch && !this.resetting) this.heartbeat();
  }

  // ——— restore ———

  /** Session `pid` with what it missed after `offsetText`, or null (counted, and told to the namespace). */
  async restore(pid: string, offsetText: string): Promise<RecoveredSession | null> {
    // "": the client received nothing before it lost its connection; its session's mark
    // (where the log stood when it connected) stands in for its offset.
    const fromMark = offsetText === "";
    let offset = fromMark ? undefined : parseOffset(offsetText);
    if (!plausiblePid(pid) || (!fromMark && offset === undefined)) {
      this.stats.missMalformed++;
      return this.miss(plausiblePid(pid) ? "offset" : "unknown-session");
    }
    const capture: Capture = { items: [], overflow: false };
    this.captures.add(capture);
    let watch: { ready: Promise<void>; release(): void } | undefined;
    try {
      let taken = await this.log.take(pid);
      if (taken !== null && "waitMs" in taken) {
        // Its node looked alive a moment ago: it may be dead (then its sessions can be
        // taken once it is overdue) or about to persist the session. Once more, bounded.
        this.stats.waits++;
        await sleep(Math.min(Math.max(taken.waitMs, 0) + 25, this.nodeTimeout + 25));
        taken = await this.log.take(pid);
      }
      if (taken === null || !("snapshot" in taken)) {
        this.stats.missSession++;
        return this.miss("unknown-session");
      }
      const session = decodeSession(pid, taken.snapshot);
      if (session === undefined) {
        this.stats.missError++;
        return this.miss("error");
      }
      if (fromMark) {
        offset = parseOffset(session.mark);
        if (offset === undefined) {
          this.stats.missTrimmed++;
          return this.miss("offset");
        }
        offsetText = session.mark!;
      }
      // This node may hold no socket of the session's rooms yet, and so not receive their
      // broadcasts: subscribed before the read, whatever the read misses arrives here.
      watch = this.host.watchRooms([...session.rooms, session.sid]);
      await bounded(watch.ready, this.nodeTimeout + 1000);
      const read = await this.log.read(offsetText);
      if ("gone" in read) return this.lost(read.gone);
      const mine = new Set<Room>(session.rooms);
      mine.add(session.sid);
      const missed: unknown[][] = [];
      let last = offset!;
      for (const [text, entry] of read.entries) {
        const at = parseOffset(text);
        const msg = at === undefined ? undefined : safeDecode(entry);
        if (at === undefined || msg === undefined || msg.packet.nsp !== this.host.nsp.name) {
          this.stats.missError++;
          return this.miss("error");
        }
        last = at;
        if (reaches(msg.opts.rooms, msg.opts.except, mine)) {
          missed.push([...(msg.packet.data as unknown[]), text]);
        }
      }
      if (capture.overflow) return this.lost("overflow");
      // Delivered here while the read was on its way, after what it returned.
      for (const c of capture.items) {
        if (
          c.offset.epoch === last.epoch &&
          isAfter(c.offset, last) &&
          reaches(c.rooms, c.except, mine)
        ) {
          missed.push(c.data);
        }
      }
      // A bus broadcast the read returned may still be on its way here.
      this.floors.set(session.sid, { offset: last, until: Date.now() + FLOOR_MS });
      this.finishing++;
      this.releases.push(watch.release);
      watch = undefined;
      setImmediate(finished, this);
      this.stats.restored++;
      return {
        sid: session.sid,
        pid,
        rooms: session.rooms,
        data: session.data,
        missedPackets: missed,
      };
    } catch {
      this.stats.missError++;
      return this.miss("error");
    } finally {
      this.captures.delete(capture);
      watch?.release();
    }
  }

  private lost(reason: LogGone): null {
    if (reason === "epoch") {
      this.stats.missEpoch++;
      return this.miss("epoch");
    }
    if (reason === "trimmed") this.stats.missTrimmed++;
    else this.stats.missOverflow++;
    return this.miss("offset");
  }

  private miss(reason: RecoveryMissReason): null {
    this.host.nsp.recoveryMiss(reason);
    return null;
  }

  /** @internal The restored socket is back in its rooms: this node's broadcasts go on. */
  finished(): void {
    this.finishing--;
    this.releases.shift()?.();
    this.drain();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    clearTimeout(this.retryTimer);
    this.timer = undefined;
    this.floors.clear();
    void this.log.close().catch(noop);
  }
}

function safeDecode(entry: Buffer): ReturnType<typeof decodeEntry> | undefined {
  try {
    return decodeEntry(entry);
  } catch {
    return undefined;
  }
}

/** Resolves when `p` does, or rejects after `ms`. */
function bounded(p: Promise<void>, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(reject, ms, new Error("room subscriptions not confirmed"));
    void p.then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function retryReset(r: LogRecovery): void {
  r.retryReset();
}

function finished(r: LogRecovery): void {
  r.finished();
}

function flushLater(r: LogRecovery): void {
  r.flush();
}
