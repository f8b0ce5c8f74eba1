/**
 * The in-memory adapter: room index as `Map<room, Set<id>>` (and the reverse), with
 * broadcasts that encode once and walk the index without copying it.
 *
 * Every socket is in its own room, and most sockets in nothing else: then the members of
 * room `id` and the rooms of socket `id` are the same one-element Set `{id}`, and one Set
 * object serves as both `rooms.get(id)` and `sids.get(id)` (a Set costs ~170 bytes per
 * idle socket). Whichever side changes first gets its own copy (see {@link unshareSids},
 * {@link unshareMembers}), so both maps always read as if they held separate Sets.
 */
import { EventEmitter } from "node:events";
import { PacketType, type SocketPacket } from "@switchyard/protocol";
import type { EncodedPacket } from "../broadcast/encoded-packet.js";
import type {
  Adapter,
  AdapterNamespace,
  AdapterSocket,
  BroadcastOptions,
  PacketSink,
  PersistedSession,
  Recipient,
  RecoveredSession,
  RecoveryOptions,
  Room,
  SocketId,
} from "./adapter.js";
import { MemoryRecoveryLog, type RecoveryLogStats } from "./memory-recovery.js";

/**
 * Recipient lists of at least this many sessions are kept per room while membership stays
 * the same (smaller ones are cheaper to collect again than to hold).
 */
const REUSE_MIN_RECIPIENTS = 32;

function releaseAcks(sockets: readonly PacketSink[], id: number): void {
  for (const socket of sockets) socket.releaseAck(id);
}

/**
 * Whether a broadcast gets an offset and is kept for connection state recovery (as in
 * socket.io): an EVENT without ack id, not volatile.
 */
export function isRecoverable(packet: SocketPacket, opts: BroadcastOptions): boolean {
  return (
    (packet.type === PacketType.EVENT || packet.type === PacketType.BINARY_EVENT) &&
    packet.id === undefined &&
    opts.flags?.volatile !== true
  );
}

/** Encoded size of a packet (string length as bytes, close enough for a bound). */
function encodedSize(encoded: EncodedPacket): number {
  let n = 0;
  for (const part of encoded.parts) n += part.data?.length ?? 0;
  return n;
}

export class MemoryAdapter extends EventEmitter implements Adapter {
  readonly nsp: AdapterNamespace;
  readonly rooms = new Map<Room, Set<SocketId>>();
  readonly sids = new Map<SocketId, Set<Room>>();
  /**
   * Recipient lists of recent broadcasts to many sockets (one room, or every socket),
   * reused while the membership stays the same: no walk of the room per broadcast, and
   * consecutive broadcasts share one list, which lets the outbox write all of them to each
   * socket in one go. Dropped on any change.
   */
  private readonly recipients = new Map<Room, readonly Recipient[]>();
  private allRecipients: readonly Recipient[] | undefined = undefined;
  /** `connectionStateRecovery` as configured; undefined when off (then broadcasts log nothing). */
  protected readonly recoveryOptions: RecoveryOptions | undefined;
  /**
   * This node's log of recoverable packets and disconnected sessions (when recovery is
   * on). A subclass that keeps them elsewhere overrides {@link retain},
   * {@link persistSession} and {@link restoreSession}.
   */
  protected recoveryLog: MemoryRecoveryLog | undefined;

  constructor(nsp: AdapterNamespace) {
    super();
    this.nsp = nsp;
    this.recoveryOptions = nsp.recovery;
    this.recoveryLog = nsp.recovery === undefined ? undefined : new MemoryRecoveryLog(nsp.recovery);
  }

  init(): void {}

  close(): void {
    this.recoveryLog?.close();
  }

  serverCount(): Promise<number> {
    return Promise.resolve(1);
  }

  addAll(id: SocketId, rooms: Iterable<Room>): void {
    this.allRecipients = undefined;
    for (const room of rooms) {
      if (this.recipients.size > 0) this.recipients.delete(room);
      let mine = this.sids.get(id);
      if (mine === undefined && room === id && !this.rooms.has(id)) {
        // A socket's first room, its own: one Set for both maps (see the class comment).
        const both = new Set<string>([id]);
        this.sids.set(id, both);
        this.rooms.set(id, both);
        if (this.listenerCount("create-room") > 0) this.emit("create-room", room);
        if (this.listenerCount("join-room") > 0) this.emit("join-room", room, id);
        continue;
      }
      if (mine === undefined) {
        mine = new Set();
        this.sids.set(id, mine);
      }
      if (!mine.has(room)) this.unshareSids(id, mine).add(room);
      let members = this.rooms.get(room);
      if (members === undefined) {
        members = new Set();
        this.rooms.set(room, members);
        if (this.listenerCount("create-room") > 0) this.emit("create-room", room);
      }
      if (!members.has(id)) {
        this.unshareMembers(room, members).add(id);
        if (this.listenerCount("join-room") > 0) this.emit("join-room", room, id);
      }
    }
  }

  del(id: SocketId, room: Room): void {
    const mine = this.sids.get(id);
    if (mine?.has(room) === true) this.unshareSids(id, mine).delete(room);
    this.leaveRoom(room, id);
  }

  delAll(id: SocketId): void {
    const mine = this.sids.get(id);
    if (mine === undefined) return;
    this.allRecipients = undefined;
    if (this.rooms.get(id) === mine) {
      // Only in its own room, whose Set this is: nothing to copy, nothing else to leave.
      if (this.recipients.size > 0) this.recipients.delete(id);
      if (this.listenerCount("leave-room") > 0) this.emit("leave-room", id, id);
      this.rooms.delete(id);
      if (this.listenerCount("delete-room") > 0) this.emit("delete-room", id);
      this.sids.delete(id);
      return;
    }
    for (const room of mine) this.leaveRoom(room, id);
    this.sids.delete(id);
  }

  /** The rooms of socket `id`, copied first if the Set is shared with its own room's members. */
  private unshareSids(id: SocketId, mine: Set<Room>): Set<Room> {
    if (this.rooms.get(id) !== mine) return mine;
    const copy = new Set(mine);
    this.sids.set(id, copy);
    return copy;
  }

  /** The members of `room`, copied first if the Set is shared with socket `room`'s rooms. */
  private unshareMembers(room: Room, members: Set<SocketId>): Set<SocketId> {
    if (this.sids.get(room) !== members) return members;
    const copy = new Set(members);
    this.rooms.set(room, copy);
    return copy;
  }

  private leaveRoom(room: Room, id: SocketId): void {
    let members = this.rooms.get(room);
    if (members === undefined || !members.has(id)) return;
    members = this.unshareMembers(room, members);
    members.delete(id);
    if (this.recipients.size > 0) this.recipients.delete(room);
    if (this.listenerCount("leave-room") > 0) this.emit("leave-room", room, id);
    if (members.size === 0 && this.rooms.delete(room) && this.listenerCount("delete-room") > 0) {
      this.emit("delete-room", room);
    }
  }

  broadcast(packet: SocketPacket, opts: BroadcastOptions): void {
    if (this.recoveryOptions !== undefined && isRecoverable(packet, opts)) {
      this.deliverLocal(packet, opts, this.retain(packet, opts));
      return;
    }
    this.deliverLocal(packet, opts);
  }

  /**
   * Connection state recovery: appends an offset to `packet.data` (its last argument, as
   * socket.io clients expect), keeps the packet in the log and returns its encoding.
   * Called by {@link broadcast} for recoverable packets only while recovery is on.
   */
  protected retain(packet: SocketPacket, opts: BroadcastOptions): EncodedPacket {
    const log = this.recoveryLog!;
    const offset = log.nextOffset();
    // A copy: the caller's array may go to other adapters too (a parent namespace hands
    // one to each child), each appending its own offset.
    const data = [...(packet.data as unknown[]), offset];
    packet.data = data;
    const encoded = this.nsp.encode(packet);
    log.append(offset, data, opts, encodedSize(encoded));
    return encoded;
  }

  /** What the recovery log holds (undefined when recovery is off or kept elsewhere). */
  get recoveryStats(): RecoveryLogStats | undefined {
    return this.recoveryLog?.stats;
  }

  recoveryMark(): string | undefined {
    return this.recoveryLog?.mark();
  }

  missedSince(mark: string, rooms: readonly Room[]): unknown[][] | undefined {
    return this.recoveryLog?.since(mark, rooms);
  }

  persistSession(session: PersistedSession): void {
    this.recoveryLog?.persist(session);
  }

  restoreSession(
    pid: string,
    offset: string,
  ): Promise<RecoveredSession | null> | RecoveredSession | null {
    const log = this.recoveryLog;
    if (log === undefined) return null;
    const result = log.restore(pid, offset);
    if (typeof result !== "string") return result;
    this.nsp.recoveryMiss(result);
    return null;
  }

  /**
   * Delivers `packet` to this node's matching sockets, as it is: never stamps an offset
   * (a packet from another node arrives with its own). `encoded` if already encoded.
   */
  protected deliverLocal(
    packet: SocketPacket,
    opts: BroadcastOptions,
    encoded: EncodedPacket = this.nsp.encode(packet),
  ): void {
    const flags = opts.flags;
    const volatile = flags?.volatile === true;
    const compress = flags?.compress !== false;
    if (this.nsp.outgoingListeners > 0) this.notifyOutgoing(opts, packet.data as unknown[]);
    // The recipients are fixed now; the engine's outbox writes to them at once or, behind
    // other deliveries or for a big room, over the next event-loop turns.
    const recipients = this.recipientsOf(opts);
    if (recipients.length > 0)
      recipients[0]!.outbox.broadcast(encoded, recipients, volatile, compress);
  }

  /** The sessions `opts` reaches, as a list that is never changed afterwards. */
  private recipientsOf(opts: BroadcastOptions): readonly Recipient[] {
    const rooms = opts.rooms;
    if (opts.except === undefined || opts.except.size === 0) {
      if (rooms.size === 0) {
        if (this.allRecipients !== undefined) return this.allRecipients;
        const list = this.collectTargets(opts);
        if (list.length >= REUSE_MIN_RECIPIENTS) this.allRecipients = list;
        return list;
      }
      if (rooms.size === 1) {
        const [room] = rooms as ReadonlySet<Room>;
        let list = this.recipients.get(room!);
        if (list === undefined) {
          list = this.collectTargets(opts);
          if (list.length >= REUSE_MIN_RECIPIENTS) this.recipients.set(room!, list);
        }
        return list;
      }
    }
    return this.collectTargets(opts);
  }

  private collectTargets(opts: BroadcastOptions): Recipient[] {
    const targets: Recipient[] = [];
    this.apply(opts, (socket) => {
      targets.push(socket.conn);
    });
    return targets;
  }

  broadcastWithAck(
    packet: SocketPacket,
    opts: BroadcastOptions,
    clientCountCallback: (clientCount: number) => void,
    ack: (...args: unknown[]) => void,
  ): void {
    const flags = opts.flags;
    const compress = flags?.compress !== false;
    // One id for every recipient: ids come from the namespace counter, so none collide.
    const id = this.nsp.nextAckId();
    packet.id = id;
    const encoded = this.nsp.encode(packet);
    const data = this.nsp.outgoingListeners > 0 ? (packet.data as unknown[]) : undefined;
    // With a timeout, the callbacks of clients that never answer are released when it
    // passes: held until they disconnect, a periodic timed broadcast would grow memory
    // per silent client.
    const timeout = flags?.timeout;
    const held: PacketSink[] | undefined = timeout === undefined ? undefined : [];
    const recipients: Recipient[] = [];
    this.apply(opts, (socket) => {
      socket.expectAck(id, ack);
      held?.push(socket);
      if (data !== undefined) socket.notifyOutgoing(data);
      recipients.push(socket.conn);
    });
    if (recipients.length > 0)
      recipients[0]!.outbox.broadcast(encoded, recipients, false, compress);
    if (held !== undefined && held.length > 0) {
      setTimeout(releaseAcks, timeout, held, id).unref();
    }
    clientCountCallback(recipients.length);
  }

  /** Shows a broadcast to the `onAnyOutgoing` listeners of the sockets it reaches. */
  private notifyOutgoing(opts: BroadcastOptions, data: unknown[]): void {
    this.apply(opts, (socket) => {
      socket.notifyOutgoing(data);
    });
  }

  sockets(rooms: ReadonlySet<Room>): Promise<Set<SocketId>> {
    const ids = new Set<SocketId>();
    this.apply({ rooms }, (socket) => {
      ids.add(socket.id);
    });
    return Promise.resolve(ids);
  }

  socketRooms(id: SocketId): Set<Room> | undefined {
    return this.sids.get(id);
  }

  fetchSockets(opts: BroadcastOptions): Promise<AdapterSocket[]> {
    return Promise.resolve(this.collect(opts));
  }

  addSockets(opts: BroadcastOptions, rooms: Room[]): void {
    for (const socket of this.collect(opts)) socket.join(rooms);
  }

  delSockets(opts: BroadcastOptions, rooms: Room[]): void {
    for (const socket of this.collect(opts)) for (const room of rooms) socket.leave(room);
  }

  disconnectSockets(opts: BroadcastOptions, close: boolean): void {
    for (const socket of this.collect(opts)) socket.disconnect(close);
  }

  serverSideEmit(args: unknown[]): void {
    // One node: there is nobody else to tell. An ack still gets its (empty) answer.
    const last = args[args.length - 1];
    if (typeof last === "function") process.nextTick(last, null, []);
  }

  /** The matching sockets, copied so callers may change rooms while iterating. */
  protected collect(opts: BroadcastOptions): AdapterSocket[] {
    const out: AdapterSocket[] = [];
    this.apply(opts, (socket) => {
      out.push(socket);
    });
    return out;
  }

  /** Calls `fn` once for every local socket matched by `opts`. */
  protected apply(opts: BroadcastOptions, fn: (socket: AdapterSocket) => void): void {
    const sockets = this.nsp.sockets;
    const except = this.exceptIds(opts.except);
    const rooms = opts.rooms;
    if (rooms.size === 0) {
      for (const [id, socket] of sockets) if (except === undefined || !except.has(id)) fn(socket);
      return;
    }
    if (rooms.size === 1) {
      for (const room of rooms) {
        const ids = this.rooms.get(room);
        if (ids === undefined) return;
        for (const id of ids) {
          if (except?.has(id)) continue;
          const socket = sockets.get(id);
          if (socket !== undefined) fn(socket);
        }
      }
      return;
    }
    const seen = new Set<SocketId>();
    for (const room of rooms) {
      const ids = this.rooms.get(room);
      if (ids === undefined) continue;
      for (const id of ids) {
        if (seen.has(id) || except?.has(id)) continue;
        seen.add(id);
        const socket = sockets.get(id);
        if (socket !== undefined) fn(socket);
      }
    }
  }

  private exceptIds(except: ReadonlySet<Room> | undefined): Set<SocketId> | undefined {
    if (except === undefined || except.size === 0) return undefined;
    const ids = new Set<SocketId>();
    for (const room of except) {
      const members = this.rooms.get(room);
      if (members !== undefined) for (const id of members) ids.add(id);
    }
    return ids;
  }
}
