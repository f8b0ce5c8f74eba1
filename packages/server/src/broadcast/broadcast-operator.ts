/**
 * The immutable broadcast chain of `io.to(a).except(b).volatile.emit(...)`: each step
 * returns a new operator; `emit` hands one packet to the adapter, which encodes it once.
 */
import { type ClusterSocketInfo, PacketType, type SocketPacket } from "@switchyard/protocol";
import type { Adapter, BroadcastFlags, Room, SocketId } from "../adapter/adapter.js";
import { assertNotReserved, RemoteSocket } from "../adapter/remote-socket.js";
import {
  isSocketIoAdapter,
  SOCKET_IO_ADAPTER_TIMEOUT,
  SocketIoRemoteHost,
} from "../adapter/socketio-adapter.js";
import { AckTimeoutError } from "../errors.js";
import type { Handshake } from "../namespace/handshake.js";
import type {
  BroadcastAckResult,
  DecorateBroadcastAcknowledgements,
  DefaultEventsMap,
  EventNames,
  EventNamesWithAck,
  EventParams,
  EventParamsWithoutAck,
  EventsMap,
} from "../typed-events.js";

export { assertNotReserved };

/** A socket as returned by `fetchSockets()`: local or (in a cluster) on another node. */
export interface FetchedSocket<
  EmitEvents extends EventsMap = DefaultEventsMap,
  // biome-ignore lint/suspicious/noExplicitAny: socket.io's default (see Server)
  SocketData = any,
> {
  readonly id: SocketId;
  readonly handshake: Handshake;
  readonly rooms: Set<Room>;
  readonly data: SocketData;
  emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): boolean;
  join(room: Room | Room[]): Promise<void> | void;
  leave(room: Room): Promise<void> | void;
  disconnect(close?: boolean): unknown;
  timeout(ms: number): unknown;
}

export class BroadcastOperator<
  EmitEvents extends EventsMap = DefaultEventsMap,
  // biome-ignore lint/suspicious/noExplicitAny: socket.io's default (see Server)
  SocketData = any,
> {
  private readonly adapter: Adapter;
  private readonly nsp: string;
  private readonly rooms: ReadonlySet<Room>;
  private readonly exceptRooms: ReadonlySet<Room>;
  private readonly flags: Readonly<BroadcastFlags>;

  constructor(
    adapter: Adapter,
    nsp: string,
    rooms: ReadonlySet<Room> = new Set(),
    exceptRooms: ReadonlySet<Room> = new Set(),
    flags: Readonly<BroadcastFlags> = {},
  ) {
    this.adapter = adapter;
    this.nsp = nsp;
    this.rooms = rooms;
    this.exceptRooms = exceptRooms;
    this.flags = flags;
  }

  /** Targets the sockets of `room` (union with earlier targets). */
  to(room: Room | readonly Room[]): BroadcastOperator<EmitEvents, SocketData> {
    const rooms = new Set(this.rooms);
    for (const r of typeof room === "string" ? [room] : room) rooms.add(r);
    return new BroadcastOperator(this.adapter, this.nsp, rooms, this.exceptRooms, this.flags);
  }

  /** Alias of {@link to}. */
  in(room: Room | readonly Room[]): BroadcastOperator<EmitEvents, SocketData> {
    return this.to(room);
  }

  /** Excludes the sockets of `room`. */
  except(room: Room | readonly Room[]): BroadcastOperator<EmitEvents, SocketData> {
    const except = new Set(this.exceptRooms);
    for (const r of typeof room === "string" ? [room] : room) except.add(r);
    return new BroadcastOperator(this.adapter, this.nsp, this.rooms, except, this.flags);
  }

  /** Sets whether the packet may be compressed. */
  compress(compress: boolean): BroadcastOperator<EmitEvents, SocketData> {
    return this.withFlags({ compress });
  }

  /** The packet may be dropped for clients that are not ready. */
  get volatile(): BroadcastOperator<EmitEvents, SocketData> {
    return this.withFlags({ volatile: true });
  }

  /** Only this node's clients (no effect on one node). */
  get local(): BroadcastOperator<EmitEvents, SocketData> {
    return this.withFlags({ local: true });
  }

  /** Waits `ms` for every client's ack: `emit(..., (err, responses) => …)`. */
  timeout(
    ms: number,
  ): BroadcastOperator<DecorateBroadcastAcknowledgements<EmitEvents>, SocketData> {
    return this.withFlags({ timeout: ms }) as unknown as BroadcastOperator<
      DecorateBroadcastAcknowledgements<EmitEvents>,
      SocketData
    >;
  }

  private withFlags(flags: BroadcastFlags): BroadcastOperator<EmitEvents, SocketData> {
    return new BroadcastOperator(this.adapter, this.nsp, this.rooms, this.exceptRooms, {
      ...this.flags,
      ...flags,
    });
  }

  /** Emits to every matching client. A trailing callback collects their acks. */
  emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): boolean {
    assertNotReserved(ev);
    const data: unknown[] = [ev, ...args];
    const last = data[data.length - 1];
    const packet: SocketPacket = { type: PacketType.EVENT, nsp: this.nsp, data };
    if (typeof last !== "function") {
      this.adapter.broadcast(packet, {
        rooms: this.rooms,
        except: this.exceptRooms,
        flags: this.flags,
      });
      return true;
    }
    data.pop();
    this.broadcastWithAck(packet, last as (err: Error | null, responses: unknown[]) => void);
    return true;
  }

  /**
   * Emits and resolves with every client's ack. On timeout it rejects with an
   * {@link AckTimeoutError} whose `responses` holds the answers that did arrive.
   */
  emitWithAck<Ev extends EventNamesWithAck<EmitEvents>>(
    ev: Ev,
    ...args: EventParamsWithoutAck<EmitEvents, Ev>
  ): Promise<BroadcastAckResult<EmitEvents, Ev>> {
    return new Promise((resolve, reject) => {
      // Inside the executor: a reserved name rejects, like every other failure here
      // and like socket.io's emitWithAck, instead of throwing synchronously.
      assertNotReserved(ev);
      const packet: SocketPacket = {
        type: PacketType.EVENT,
        nsp: this.nsp,
        data: [ev, ...(args as unknown[])],
      };
      this.broadcastWithAck(packet, (err, responses) => {
        if (err === null) resolve(responses as BroadcastAckResult<EmitEvents, Ev>);
        else {
          // As socket.io: the answers that did arrive travel with the rejection.
          (err as Error & { responses?: unknown[] }).responses = responses;
          reject(err);
        }
      });
    });
  }

  private broadcastWithAck(
    packet: SocketPacket,
    ack: (err: Error | null, responses: unknown[]) => void,
  ): void {
    const responses: unknown[] = [];
    let expected: number | undefined;
    let done = false;
    // Switchyard's adapters report the count once, for the whole cluster; socket.io
    // adapters once per node, so their count is complete when serverCount() nodes did.
    const perNode = isSocketIoAdapter(this.adapter);
    let flags = this.flags;
    if (perNode && flags.timeout === undefined) {
      // socket.io's cluster adapters forget a broadcast's remote acks after its
      // `timeout`: without one they would never count, so theirs is the default.
      flags = { ...flags, timeout: SOCKET_IO_ADAPTER_TIMEOUT };
    }
    const timeout = flags.timeout;
    const timer =
      timeout === undefined
        ? undefined
        : setTimeout(() => {
            if (done) return;
            done = true;
            ack(new AckTimeoutError(), responses);
          }, timeout);
    let nodesLeft = perNode ? -1 : 1;
    const check = () => {
      if (done || nodesLeft !== 0 || expected === undefined || responses.length < expected) return;
      done = true;
      if (timer !== undefined) clearTimeout(timer);
      ack(null, responses);
    };
    if (perNode) {
      void this.adapter.serverCount().then((n) => {
        nodesLeft += n + 1;
        check();
      });
    }
    try {
      this.adapter.broadcastWithAck(
        packet,
        { rooms: this.rooms, except: this.exceptRooms, flags },
        (clientCount) => {
          expected = (expected ?? 0) + clientCount;
          nodesLeft--;
          check();
        },
        (response) => {
          // Past the timeout the caller has its answer; a straggler changes nothing.
          if (done) return;
          responses.push(response);
          check();
        },
      );
    } catch (err) {
      // Nothing was sent (the packet could not be encoded): the caller gets the error,
      // and the ack must not fire later with a timeout.
      done = true;
      if (timer !== undefined) clearTimeout(timer);
      throw err;
    }
  }

  /** Ids of the matching sockets. */
  allSockets(): Promise<Set<SocketId>> {
    return this.adapter.sockets(this.rooms);
  }

  /**
   * The matching sockets. Typed as socket.io types them: local ones are the live
   * {@link Socket} objects, which offer everything a {@link RemoteSocket} does.
   */
  async fetchSockets(): Promise<RemoteSocket<EmitEvents, SocketData>[]> {
    const sockets = (await this.adapter.fetchSockets(this.opts())) as unknown[];
    // A socket.io adapter answers with plain `{ id, handshake, rooms, data }` objects for
    // the sockets of other nodes: they become RemoteSockets acting through that adapter.
    let host: SocketIoRemoteHost | undefined;
    for (let i = 0; i < sockets.length; i++) {
      const s = sockets[i] as { emit?: unknown };
      if (typeof s.emit === "function") continue;
      host ??= new SocketIoRemoteHost(this.adapter, this.nsp);
      sockets[i] = new RemoteSocket(host, "", s as ClusterSocketInfo);
    }
    return sockets as RemoteSocket<EmitEvents, SocketData>[];
  }

  /** Makes the matching sockets join `room`. */
  socketsJoin(room: Room | readonly Room[]): void {
    this.adapter.addSockets(this.opts(), typeof room === "string" ? [room] : [...room]);
  }

  /** Makes the matching sockets leave `room`. */
  socketsLeave(room: Room | readonly Room[]): void {
    this.adapter.delSockets(this.opts(), typeof room === "string" ? [room] : [...room]);
  }

  /** Disconnects the matching sockets (`close` also closes their connection). */
  disconnectSockets(close = false): void {
    this.adapter.disconnectSockets(this.opts(), close);
  }

  private opts() {
    return { rooms: this.rooms, except: this.exceptRooms, flags: this.flags };
  }
}
