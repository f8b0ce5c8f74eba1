/**
 * A socket held by another node, as `fetchSockets()` returns it in a cluster: a
 * snapshot of its id, handshake, rooms and data, with the operations socket.io's
 * `RemoteSocket` offers. Each operation becomes a message to the node that holds the
 * socket; nothing here touches the socket directly.
 */
import type { ClusterSocketInfo } from "@switchyard/protocol";
import type { FetchedSocket } from "../broadcast/broadcast-operator.js";
import { AckTimeoutError, ErrorCode, SwitchyardError } from "../errors.js";
import type { Handshake } from "../namespace/handshake.js";
import {
  type AckResult,
  type DecorateAcknowledgements,
  type DefaultEventsMap,
  type EventNames,
  type EventNamesWithAck,
  type EventParams,
  type EventParamsWithoutAck,
  type EventsMap,
  RESERVED_EVENTS,
} from "../typed-events.js";
import type { Room, SocketId } from "./adapter.js";

/** Throws the error socket.io throws for reserved names (used by every emit path). */
export function assertNotReserved(ev: unknown): void {
  if (typeof ev === "string" && RESERVED_EVENTS.has(ev)) {
    throw new SwitchyardError(ErrorCode.RESERVED_EVENT, `"${ev}" is a reserved event name`);
  }
}

/** Receives the client's ack arguments, or an error (timeout) and none. */
export type RemoteAckCallback = (err: Error | null, args: unknown[]) => void;

/**
 * The ack function of a remote emit: calls `callback(null, args)` for the first answer, or
 * `callback(AckTimeoutError, [])` after `timeout` ms (never, if undefined) — once either way.
 */
export function remoteAckOnce(
  timeout: number | undefined,
  callback: RemoteAckCallback,
): (...args: unknown[]) => void {
  let done = false;
  const timer =
    timeout === undefined
      ? undefined
      : setTimeout(() => {
          if (done) return;
          done = true;
          callback(new AckTimeoutError(), []);
        }, timeout);
  return (...args: unknown[]) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    callback(null, args);
  };
}

/** What a {@link RemoteSocket} asks of its cluster adapter. */
export interface RemoteSocketHost {
  /** Emits `data` (`[event, ...args]`) to the socket `id` wherever it is. */
  remoteEmit(id: SocketId, data: unknown[]): void;
  /**
   * Emits to socket `id` on node `node` and calls `callback` once: with the client's ack,
   * or with an AckTimeoutError after `timeout` ms (without a timeout it is only called on
   * an ack).
   */
  remoteEmitWithAck(
    node: string,
    id: SocketId,
    data: unknown[],
    timeout: number | undefined,
    callback: RemoteAckCallback,
  ): void;
  remoteJoin(node: string, id: SocketId, rooms: Room[]): void;
  remoteLeave(node: string, id: SocketId, rooms: Room[]): void;
  remoteDisconnect(node: string, id: SocketId, close: boolean): void;
}

type AnyCallback = (...args: unknown[]) => void;

export class RemoteSocket<
  EmitEvents extends EventsMap = DefaultEventsMap,
  // biome-ignore lint/suspicious/noExplicitAny: socket.io's default (see Server)
  SocketData = any,
> implements FetchedSocket<EmitEvents, SocketData>
{
  readonly id: SocketId;
  /** The handshake as the owning node sent it. */
  readonly handshake: Handshake;
  /** The socket's rooms when it was fetched (not updated by `join`/`leave`). */
  readonly rooms: Set<Room>;
  /** The socket's `data` when it was fetched. */
  readonly data: SocketData;
  /** Cluster uid of the node that holds the socket. */
  readonly node: string;
  readonly #host: RemoteSocketHost;

  constructor(host: RemoteSocketHost, node: string, info: ClusterSocketInfo) {
    this.#host = host;
    this.node = node;
    this.id = info.id;
    this.handshake = info.handshake as unknown as Handshake;
    this.rooms = new Set(info.rooms);
    this.data = info.data as SocketData;
  }

  /**
   * Emits to this client. A trailing callback receives its ack arguments (called only
   * if it acks); use {@link timeout} to be told when it does not.
   */
  emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): boolean {
    assertNotReserved(ev);
    const data: unknown[] = [ev, ...args];
    const last = data[data.length - 1];
    if (typeof last !== "function") {
      this.#host.remoteEmit(this.id, data);
      return true;
    }
    data.pop();
    const cb = last as AnyCallback;
    this.#host.remoteEmitWithAck(this.node, this.id, data, undefined, (err, ackArgs) => {
      if (err === null) cb(...ackArgs);
    });
    return true;
  }

  /** The next emit's callback gets `(err, ...ackArgs)`, err being an AckTimeoutError after `ms`. */
  timeout(ms: number): RemoteSocketWithTimeout<DecorateAcknowledgements<EmitEvents>> {
    return new RemoteSocketWithTimeout(this.#host, this.node, this.id, ms);
  }

  /** Makes the socket join `rooms` (on its node; not awaited). */
  join(rooms: Room | readonly Room[]): void {
    this.#host.remoteJoin(this.node, this.id, typeof rooms === "string" ? [rooms] : [...rooms]);
  }

  /** Makes the socket leave `room`. */
  leave(room: Room): void {
    this.#host.remoteLeave(this.node, this.id, [room]);
  }

  /** Disconnects the socket; `close` also closes its connection. */
  disconnect(close = false): this {
    this.#host.remoteDisconnect(this.node, this.id, close);
    return this;
  }
}

/** `remoteSocket.timeout(ms)`: emits whose ack callback first receives an error or null. */
export class RemoteSocketWithTimeout<EmitEvents extends EventsMap = DefaultEventsMap> {
  readonly #host: RemoteSocketHost;
  readonly #node: string;
  readonly #id: SocketId;
  readonly #timeout: number;

  constructor(host: RemoteSocketHost, node: string, id: SocketId, timeout: number) {
    this.#host = host;
    this.#node = node;
    this.#id = id;
    this.#timeout = timeout;
  }

  /** Emits; a trailing callback gets `(null, ...ackArgs)` or `(AckTimeoutError)`. */
  emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): boolean {
    assertNotReserved(ev);
    const data: unknown[] = [ev, ...args];
    const last = data[data.length - 1];
    if (typeof last !== "function") {
      this.#host.remoteEmit(this.#id, data);
      return true;
    }
    data.pop();
    const cb = last as AnyCallback;
    this.#host.remoteEmitWithAck(this.#node, this.#id, data, this.#timeout, (err, ackArgs) => {
      if (err === null) cb(null, ...ackArgs);
      else cb(err);
    });
    return true;
  }

  /** Resolves with the client's ack value; rejects with AckTimeoutError. */
  emitWithAck<Ev extends EventNamesWithAck<EmitEvents>>(
    ev: Ev,
    ...args: EventParamsWithoutAck<EmitEvents, Ev>
  ): Promise<AckResult<EmitEvents, Ev>> {
    assertNotReserved(ev);
    return new Promise((resolve, reject) => {
      this.#host.remoteEmitWithAck(
        this.#node,
        this.#id,
        [ev, ...(args as unknown[])],
        this.#timeout,
        (err, ackArgs) => {
          if (err !== null) reject(err);
          else resolve(ackArgs[0] as AckResult<EmitEvents, Ev>);
        },
      );
    });
  }
}
