/**
 * socket.io's adapter contract: what lets a `socket.io-adapter` `Adapter` /
 * `ClusterAdapter` subclass (`@socket.io/redis-adapter`, the Redis Streams, Postgres and
 * cluster adapters, …) run unchanged as a namespace's adapter. Those classes reach past
 * the adapter seam into socket.io's namespace, socket and client objects; the members
 * they use are marked `socket.io-adapter contract` where they are defined
 * (`namespace/namespace.ts`, `namespace/socket.ts`, `namespace/connection.ts`,
 * `server.ts`) and are prototype accessors or methods, so they cost nothing per
 * connection. This module holds the parts that are not members: the factory
 * normalisation, the write of packets such an adapter encoded, and the host through
 * which `fetchSockets()` results of other nodes (plain objects) act. docs/socketio-adapters.md
 * maps the whole contract.
 */
import { PacketType, type SocketPacket } from "@switchyard/protocol";
import { InvalidOptionError } from "../errors.js";
import type {
  Adapter,
  AdapterConstructor,
  AdapterNamespace,
  RecoveryOptions,
  Room,
  SocketId,
} from "./adapter.js";
import { type RemoteAckCallback, type RemoteSocketHost, remoteAckOnce } from "./remote-socket.js";

/**
 * What `new Server({ adapter })` and `io.adapter(…)` accept, as socket.io does: a
 * Switchyard adapter class ({@link AdapterConstructor}), a `socket.io-adapter` subclass,
 * or a factory function returning an adapter (`createAdapter(pubClient, subClient)` of
 * `@socket.io/redis-adapter`). The namespace parameter is typed `never` so that classes
 * typed against socket.io's `Namespace` are accepted.
 */
export type AdapterFactory =
  | AdapterConstructor
  | (abstract new (
      nsp: never,
    ) => object)
  | ((nsp: never) => object);

/**
 * Turns what the app gave into a constructor of one adapter per namespace, as socket.io
 * calls it (`new factory(nsp)`: a class, or a plain function that returns the adapter).
 * An arrow function, which `new` refuses, is called. Anything else: InvalidOptionError.
 */
export function toAdapterConstructor(factory: unknown, option = "adapter"): AdapterConstructor {
  if (typeof factory !== "function") {
    throw new InvalidOptionError(
      option,
      "an adapter class or a function returning an adapter (e.g. createAdapter(pubClient, subClient))",
      factory,
    );
  }
  const fn = factory as (nsp: AdapterNamespace) => Adapter;
  if (fn.prototype !== undefined) return factory as AdapterConstructor;
  // A class whose constructor returns another object yields that object.
  return class {
    constructor(nsp: AdapterNamespace) {
      // biome-ignore lint/correctness/noConstructorReturn: the factory's adapter is the instance
      return fn(nsp);
    }
  } as unknown as AdapterConstructor;
}

/**
 * What socket.io adapters read of `nsp.server`: the encoder they encode broadcasts with
 * once (its output goes to `client.writeToEngine` of every recipient), and the options
 * (`connectionStateRecovery` tells them whether to append offsets). The public `Server`
 * implements it.
 */
export interface SocketIoServerView {
  readonly encoder: { encode(packet: SocketPacket): (string | Buffer)[] };
  readonly opts: { readonly connectionStateRecovery?: RecoveryOptions | undefined };
}

/**
 * Whether `adapter` is a `socket.io-adapter` class (its base class's own helpers are
 * there): such an adapter reports a broadcast's client count once per node, where
 * Switchyard's report it once for the cluster.
 */
export function isSocketIoAdapter(adapter: object): boolean {
  const a = adapter as { computeExceptSids?: unknown; apply?: unknown };
  return typeof a.computeExceptSids === "function" && typeof a.apply === "function";
}

/**
 * socket.io-adapter's default request timeout: through a socket.io adapter, a broadcast
 * or remote emit with an ack and no `timeout()` waits this long.
 */
export const SOCKET_IO_ADAPTER_TIMEOUT = 5000;

/**
 * Acts on sockets of other nodes through a socket.io adapter, as socket.io's own
 * `RemoteSocket` does: an emit is a broadcast to the socket's id room, a join / leave /
 * disconnect is `addSockets` / `delSockets` / `disconnectSockets` targeting that room.
 * The adapter finds the node (the `node` argument is unused: socket.io adapters do not
 * say which node answered).
 */
export class SocketIoRemoteHost implements RemoteSocketHost {
  readonly #adapter: Adapter;
  readonly #nsp: string;

  constructor(adapter: Adapter, nsp: string) {
    this.#adapter = adapter;
    this.#nsp = nsp;
  }

  #target(id: SocketId) {
    return { rooms: new Set<Room>([id]), except: new Set<Room>(), flags: {} };
  }

  remoteEmit(id: SocketId, data: unknown[]): void {
    const packet: SocketPacket = { type: PacketType.EVENT, nsp: this.#nsp, data };
    this.#adapter.broadcast(packet, this.#target(id));
  }

  remoteEmitWithAck(
    _node: string,
    id: SocketId,
    data: unknown[],
    timeout: number | undefined,
    callback: RemoteAckCallback,
  ): void {
    const ms = timeout ?? SOCKET_IO_ADAPTER_TIMEOUT;
    const packet: SocketPacket = { type: PacketType.EVENT, nsp: this.#nsp, data };
    this.#adapter.broadcastWithAck(
      packet,
      { rooms: new Set([id]), except: new Set(), flags: { timeout: ms } },
      () => {},
      remoteAckOnce(ms, callback),
    );
  }

  remoteJoin(_node: string, id: SocketId, rooms: Room[]): void {
    void this.#adapter.addSockets(this.#target(id), rooms);
  }

  remoteLeave(_node: string, id: SocketId, rooms: Room[]): void {
    void this.#adapter.delSockets(this.#target(id), rooms);
  }

  remoteDisconnect(_node: string, id: SocketId, close: boolean): void {
    void this.#adapter.disconnectSockets(this.#target(id), close);
  }
}
