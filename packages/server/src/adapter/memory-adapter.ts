/**
 * The in-memory adapter: room index as `Map<room, Set<id>>` (and the reverse), with
 * broadcasts that encode once and walk the index without copying it.
 */
import { EventEmitter } from "node:events";
import type { SocketPacket } from "@switchyard/protocol";
import type {
  Adapter,
  AdapterNamespace,
  AdapterSocket,
  BroadcastOptions,
  Room,
  SocketId,
} from "./adapter.js";

export class MemoryAdapter extends EventEmitter implements Adapter {
  readonly nsp: AdapterNamespace;
  readonly rooms = new Map<Room, Set<SocketId>>();
  readonly sids = new Map<SocketId, Set<Room>>();

  constructor(nsp: AdapterNamespace) {
    super();
    this.nsp = nsp;
  }

  init(): void {}

  close(): void {}

  serverCount(): Promise<number> {
    return Promise.resolve(1);
  }

  addAll(id: SocketId, rooms: Iterable<Room>): void {
    let mine = this.sids.get(id);
    if (mine === undefined) {
      mine = new Set();
      this.sids.set(id, mine);
    }
    for (const room of rooms) {
      mine.add(room);
      let members = this.rooms.get(room);
      if (members === undefined) {
        members = new Set();
        this.rooms.set(room, members);
        if (this.listenerCount("create-room") > 0) this.emit("create-room", room);
      }
      if (!members.has(id)) {
        members.add(id);
        if (this.listenerCount("join-room") > 0) this.emit("join-room", room, id);
      }
    }
  }

  del(id: SocketId, room: Room): void {
    this.sids.get(id)?.delete(room);
    this.leaveRoom(room, id);
  }

  delAll(id: SocketId): void {
    const mine = this.sids.get(id);
    if (mine === undefined) return;
    for (const room of mine) this.leaveRoom(room, id);
    this.sids.delete(id);
  }

  private leaveRoom(room: Room, id: SocketId): void {
    const members = this.rooms.get(room);
    if (members === undefined || !members.delete(id)) return;
    if (this.listenerCount("leave-room") > 0) this.emit("leave-room", room, id);
    if (members.size === 0 && this.rooms.delete(room) && this.listenerCount("delete-room") > 0) {
      this.emit("delete-room", room);
    }
  }

  broadcast(packet: SocketPacket, opts: BroadcastOptions): void {
    const flags = opts.flags;
    const volatile = flags?.volatile === true;
    const compress = flags?.compress !== false;
    const encoded = this.nsp.encode(packet);
    this.apply(opts, (socket) => {
      socket.deliver(encoded, volatile, compress);
    });
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
    packet.id = this.nsp.nextAckId();
    const encoded = this.nsp.encode(packet);
    let count = 0;
    this.apply(opts, (socket) => {
      count++;
      socket.expectAck(packet.id!, ack);
      socket.deliver(encoded, false, compress);
    });
    clientCountCallback(count);
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
