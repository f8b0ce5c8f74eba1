/**
 * A client's presence in one namespace — socket.io's server-side `Socket`: events both
 * ways, acks with timeouts, rooms, packet middleware, catch-all listeners.
 */
import { EventEmitter } from "node:events";
import type { IncomingMessage } from "node:http";
import { PacketType, type SocketPacket } from "@switchyard/protocol";
import type {
  AdapterSocket,
  BroadcastFlags,
  RecoveredSession,
  Room,
  SocketId,
} from "../adapter/adapter.js";
import { assertNotReserved, BroadcastOperator } from "../broadcast/broadcast-operator.js";
import type { Session } from "../engine/session.js";
import { randomId } from "../engine/session-id.js";
import { AckTimeoutError } from "../errors.js";
import type {
  AckResult,
  DecorateAcknowledgements,
  DefaultEventsMap,
  DisconnectReason,
  EventNames,
  EventNamesWithAck,
  EventParams,
  EventParamsWithoutAck,
  EventsMap,
  ReservedOrUserEventNames,
  ReservedOrUserListener,
  SocketReservedEvents,
  UntypedListener,
} from "../typed-events.js";
import type { Handshake } from "./handshake.js";
import type { Namespace } from "./namespace.js";
import { RECOVERABLE_DISCONNECT_REASONS } from "./recovery.js";
import { VALIDATION_ERROR_EVENT, validateArgs } from "./validation.js";

/** What a socket needs from its connection. */
export interface SocketConnection {
  readonly conn: Session;
  writePacket(packet: SocketPacket, volatile: boolean, compress: boolean): void;
  /** Writes one already encoded text message (a packet the codec encoded to one string). */
  writeText(text: string, volatile: boolean, compress: boolean): void;
  remove(socket: { readonly nsp: { readonly name: string } }): void;
  /** Disconnects every socket of the connection and closes it. */
  disconnect(): void;
}

/** Counters bumped by sockets (owned by the server). */
export interface SocketCounters {
  validationFailures: number;
  handlerErrors: number;
  middlewareErrors: number;
  /** Client acks received for the server's emits (to one socket or a broadcast with ack). */
  acksReceived: number;
  /** Acks a client did not send in time: a `timeout()` emit to the socket, or a timed broadcast with ack (per client that did not answer). */
  ackTimeouts: number;
}

/** `socket.use((packet, next) => …)`: `packet` is `[event, ...args]`. */
export type PacketMiddleware = (event: unknown[], next: (err?: Error) => void) => void;

type Ack = (...args: unknown[]) => void;

let warnedUnhandled = false;

/** The flags of an emit for which none were set (never written to). */
const NO_FLAGS: BroadcastFlags = Object.freeze({});
const NO_ROOMS: ReadonlySet<Room> = new Set();

/** A socket's connection state recovery: its private session id, and what it restored. */
interface SocketRecovery {
  readonly pid: string;
  readonly recovered: boolean;
  /** Missed packets to replay after the CONNECT reply (dropped once sent). */
  missed: unknown[][] | undefined;
  /**
   * The adapter's recovery mark: when the session was restored (until connected: what
   * was kept meanwhile is replayed too), then when the socket connected.
   */
  mark: string | undefined;
}

function noop(): void {}

export class Socket<
    ListenEvents extends EventsMap = DefaultEventsMap,
    EmitEvents extends EventsMap = ListenEvents,
    ServerSideEvents extends EventsMap = DefaultEventsMap,
    // biome-ignore lint/suspicious/noExplicitAny: socket.io's default, so apps that never declare SocketData compile unchanged
    SocketData = any,
  >
  extends EventEmitter
  implements AdapterSocket
{
  /** Socket id, unique per namespace connection (not the engine session id). */
  readonly id: SocketId;
  /** The namespace this socket belongs to. */
  readonly nsp: Namespace<ListenEvents, EmitEvents, ServerSideEvents, SocketData>;
  readonly client: SocketConnection;
  readonly handshake: Handshake;
  /** Whether the socket is connected to its namespace. */
  connected = false;

  // Built on first use, not per socket: an idle socket that never emits with an ack,
  // sets a flag or touches `data` costs no Map or object for them.
  private dataValue: SocketData | undefined = undefined;
  /** Callbacks of acks awaited from the client, by packet id. */
  private ackMap: Map<number, Ack> | undefined = undefined;
  /** Flags of the next emit (`timeout`, `volatile`, `compress`); undefined when none. */
  private flags: BroadcastFlags | undefined = undefined;
  /** Set once the socket left its namespace (or was refused): rooms can no longer be joined. */
  private ended = false;
  private fns: PacketMiddleware[] | undefined;
  private anyIn: UntypedListener[] | undefined;
  private anyOut: UntypedListener[] | undefined;
  /** Connection state recovery (only when the server enables it). */
  private recovery: SocketRecovery | undefined = undefined;
  /** Ties the socket's phantom type parameter (server-side events) to the class. */
  declare readonly __serverSideEvents?: ServerSideEvents;

  constructor(
    id: SocketId,
    nsp: Namespace<ListenEvents, EmitEvents, ServerSideEvents, SocketData>,
    client: SocketConnection,
    handshake: Handshake,
  ) {
    super();
    this.id = id;
    this.nsp = nsp;
    this.client = client;
    this.handshake = handshake;
  }

  /** Free-form data of the app (sent along with `fetchSockets()` in a cluster); `{}` at first. */
  get data(): SocketData {
    if (this.dataValue === undefined) this.dataValue = {} as SocketData;
    return this.dataValue;
  }

  set data(value: SocketData) {
    this.dataValue = value;
  }

  /**
   * Whether this socket recovered the state of a previous one after a temporary
   * disconnection (`connectionStateRecovery`): same id, rooms and `data`, and the
   * packets it missed replayed before anything else.
   */
  get recovered(): boolean {
    return this.recovery?.recovered === true;
  }

  /** The private session id sent to this client alone (`connectionStateRecovery` on), else undefined. */
  get pid(): string | undefined {
    return this.recovery?.pid;
  }

  /** The engine session (`transport`, `upgrade` events, …). */
  get conn(): Session {
    return this.client.conn;
  }

  /** The request that opened the connection. */
  get request(): IncomingMessage {
    return this.client.conn.request;
  }

  get disconnected(): boolean {
    return !this.connected;
  }

  /** Rooms this socket is in (its own id included). */
  get rooms(): Set<Room> {
    return this.nsp.adapter.socketRooms(this.id) ?? new Set();
  }

  // ——— emitting ———

  /** Emits to this client. A trailing callback receives its ack (with `timeout()`: `(err, ...args)`). */
  override emit<Ev extends EventNames<EmitEvents>>(
    ev: Ev,
    ...args: EventParams<EmitEvents, Ev>
  ): boolean {
    if (ev === "newListener" || ev === "removeListener") return super.emit(ev, ...args);
    assertNotReserved(ev);
    const data: unknown[] = [ev, ...args];
    const flags = this.flags ?? NO_FLAGS;
    this.flags = undefined;
    const packet: SocketPacket = { type: PacketType.EVENT, nsp: this.nsp.name, data };
    const last = data[data.length - 1];
    if (typeof last === "function") {
      data.pop();
      packet.id = this.registerAck(last as Ack, flags.timeout);
    } else if (
      this.recovery !== undefined &&
      flags.volatile !== true &&
      (this.connected || this.ended)
    ) {
      // As socket.io with recovery on: through the adapter to the socket's own room, so
      // the packet gets an offset and is kept (also while the socket is disconnected).
      this.nsp.adapter.broadcast(packet, { rooms: new Set([this.id]), except: NO_ROOMS, flags });
      return true;
    }
    if (this.anyOut !== undefined) for (const l of [...this.anyOut]) l.apply(this, data);
    try {
      this.client.writePacket(packet, flags.volatile === true, flags.compress !== false);
    } catch (err) {
      // Data that cannot be encoded throws to the caller; its ack must not fire later
      // (with a timeout error) for a packet that never left.
      if (packet.id !== undefined) this.dropAck(packet.id);
      throw err;
    }
    return true;
  }

  /** Emits and resolves with the client's ack (rejects on `timeout()`). */
  emitWithAck<Ev extends EventNamesWithAck<EmitEvents>>(
    ev: Ev,
    ...args: EventParamsWithoutAck<EmitEvents, Ev>
  ): Promise<AckResult<EmitEvents, Ev>> {
    const withErr = this.flags?.timeout !== undefined;
    return new Promise((resolve, reject) => {
      const cb = withErr
        ? (err: Error | null, res: unknown) =>
            err ? reject(err) : resolve(res as AckResult<EmitEvents, Ev>)
        : (res: unknown) => resolve(res as AckResult<EmitEvents, Ev>);
      (this.emit as (ev: string | symbol, ...a: unknown[]) => boolean)(
        ev,
        ...(args as unknown[]),
        cb,
      );
    });
  }

  /** Emits a `message` event. */
  send(...args: unknown[]): this {
    (this.emit as (ev: string, ...a: unknown[]) => boolean)("message", ...args);
    return this;
  }

  /** Alias of {@link send}. */
  write(...args: unknown[]): this {
    return this.send(...args);
  }

  private registerAck(ack: Ack, timeout: number | undefined): number {
    const id = this.nsp.nextAckId();
    if (timeout === undefined) {
      this.expectAck(id, ack);
      return id;
    }
    const timer = setTimeout(() => {
      this.ackMap?.delete(id);
      this.nsp.counters.ackTimeouts++;
      ack.call(this, new AckTimeoutError());
    }, timeout);
    const withTimer = (...args: unknown[]) => {
      clearTimeout(timer);
      ack.call(this, null, ...args);
    };
    withTimer.timer = timer;
    this.expectAck(id, withTimer);
    return id;
  }

  /** Forgets the callback of ack `id` (a broadcast whose timeout passed no longer awaits it). */
  releaseAck(id: number): void {
    if (this.ackMap?.has(id) === true) this.nsp.counters.ackTimeouts++;
    this.dropAck(id);
  }

  private dropAck(id: number): void {
    const ack = this.ackMap?.get(id) as (Ack & { timer?: NodeJS.Timeout }) | undefined;
    if (ack === undefined) return;
    this.ackMap!.delete(id);
    if (ack.timer !== undefined) clearTimeout(ack.timer);
  }

  /** The flags of the next emit, created on the first flag set. */
  private nextFlags(): BroadcastFlags {
    if (this.flags === undefined) this.flags = {};
    return this.flags;
  }

  // ——— flags ———

  /** The next emit fails with an error if the client has not acked within `ms`. */
  timeout(
    ms: number,
  ): Socket<ListenEvents, DecorateAcknowledgements<EmitEvents>, ServerSideEvents, SocketData> {
    this.nextFlags().timeout = ms;
    return this as unknown as Socket<
      ListenEvents,
      DecorateAcknowledgements<EmitEvents>,
      ServerSideEvents,
      SocketData
    >;
  }

  /** The next emit may be dropped if the client is not ready. */
  get volatile(): this {
    this.nextFlags().volatile = true;
    return this;
  }

  /** Whether the next emit may be compressed. */
  compress(compress: boolean): this {
    this.nextFlags().compress = compress;
    return this;
  }

  // ——— broadcasting from this socket (excludes itself) ———

  private operator(): BroadcastOperator<EmitEvents, SocketData> {
    const flags = this.flags ?? {};
    this.flags = undefined;
    return new BroadcastOperator(
      this.nsp.adapter,
      this.nsp.name,
      new Set(),
      new Set([this.id]),
      flags,
    );
  }

  /** Every other socket of the namespace. */
  get broadcast(): BroadcastOperator<EmitEvents, SocketData> {
    return this.operator();
  }

  /** Only this node's other sockets. */
  get local(): BroadcastOperator<EmitEvents, SocketData> {
    return this.operator().local;
  }

  /** The other sockets in `room`. */
  to(room: Room | readonly Room[]): BroadcastOperator<EmitEvents, SocketData> {
    return this.operator().to(room);
  }

  /** Alias of {@link to}. */
  in(room: Room | readonly Room[]): BroadcastOperator<EmitEvents, SocketData> {
    return this.operator().to(room);
  }

  /** Every other socket except those in `room`. */
  except(room: Room | readonly Room[]): BroadcastOperator<EmitEvents, SocketData> {
    return this.operator().except(room);
  }

  // ——— rooms ———

  /**
   * Joins one or more rooms. Allowed in connection middleware (before `connection`), as
   * in socket.io; a no-op once the socket disconnected or was refused.
   */
  join(rooms: Room | readonly Room[]): Promise<void> | void {
    if (this.ended) return;
    return this.nsp.adapter.addAll(this.id, typeof rooms === "string" ? [rooms] : rooms);
  }

  /** Leaves a room. */
  leave(room: Room): Promise<void> | void {
    if (this.ended) return;
    return this.nsp.adapter.del(this.id, room);
  }

  // ——— lifecycle ———

  /** Disconnects from the namespace; `close` closes the whole connection. */
  disconnect(close = false): this {
    if (!this.connected) return this;
    if (close) {
      this.client.disconnect();
      return this;
    }
    this.client.writePacket({ type: PacketType.DISCONNECT, nsp: this.nsp.name }, false, true);
    this.onClose("server namespace disconnect");
    return this;
  }

  /** Registers packet middleware, run before the event's listeners. */
  use(fn: PacketMiddleware): this {
    if (this.fns === undefined) this.fns = [];
    this.fns.push(fn);
    return this;
  }

  // ——— catch-all listeners ———

  onAny(listener: UntypedListener): this {
    if (this.anyIn === undefined) this.anyIn = [];
    this.anyIn.push(listener);
    return this;
  }

  prependAny(listener: UntypedListener): this {
    if (this.anyIn === undefined) this.anyIn = [];
    this.anyIn.unshift(listener);
    return this;
  }

  offAny(listener?: UntypedListener): this {
    this.anyIn = removeListener(this.anyIn, listener);
    return this;
  }

  listenersAny(): UntypedListener[] {
    return [...(this.anyIn ?? [])];
  }

  /** Listens to every packet sent to this client: its own emits and the broadcasts that reach it. */
  onAnyOutgoing(listener: UntypedListener): this {
    if (this.anyOut === undefined) this.setAnyOut([]);
    this.anyOut!.push(listener);
    return this;
  }

  prependAnyOutgoing(listener: UntypedListener): this {
    if (this.anyOut === undefined) this.setAnyOut([]);
    this.anyOut!.unshift(listener);
    return this;
  }

  offAnyOutgoing(listener?: UntypedListener): this {
    this.setAnyOut(removeListener(this.anyOut, listener));
    return this;
  }

  /**
   * Keeps the namespace's count of sockets with outgoing listeners (broadcasts look at
   * them only while it is non-zero); a socket that left counts no more.
   */
  private setAnyOut(list: UntypedListener[] | undefined): void {
    const before = this.anyOut !== undefined;
    this.anyOut = list;
    if (this.ended || before === (list !== undefined)) return;
    this.nsp.outgoingListeners += before ? -1 : 1;
  }

  /** A broadcast reaching this socket, shown to its `onAnyOutgoing` listeners. */
  notifyOutgoing(data: unknown[]): void {
    const list = this.anyOut;
    if (list === undefined) return;
    for (const l of [...list]) {
      try {
        l.apply(this, data);
      } catch (err) {
        this.nsp.counters.handlerErrors++;
        this.onError(err as Error);
      }
    }
  }

  // ——— socket.io-adapter contract ———
  // Read by socket.io-adapter's classes (see adapter/socketio-adapter.ts); prototype
  // members, nothing per socket. `client` (the connection, with `writeToEngine`) is above.

  /** socket.io-adapter contract: the callbacks of awaited acks by packet id (created on first use). */
  get acks(): Map<number, Ack> {
    if (this.ackMap === undefined) this.ackMap = new Map();
    return this.ackMap;
  }

  /** socket.io-adapter contract: shows a broadcast packet to the `onAnyOutgoing` listeners. */
  notifyOutgoingListeners(packet: { data?: unknown }): void {
    if (this.anyOut !== undefined && Array.isArray(packet.data)) this.notifyOutgoing(packet.data);
  }

  listenersAnyOutgoing(): UntypedListener[] {
    return [...(this.anyOut ?? [])];
  }

  // ——— typed listener registration ———

  override on<Ev extends ReservedOrUserEventNames<SocketReservedEvents, ListenEvents>>(
    ev: Ev,
    listener: ReservedOrUserListener<SocketReservedEvents, ListenEvents, Ev>,
  ): this {
    return super.on(ev, listener as UntypedListener);
  }

  override once<Ev extends ReservedOrUserEventNames<SocketReservedEvents, ListenEvents>>(
    ev: Ev,
    listener: ReservedOrUserListener<SocketReservedEvents, ListenEvents, Ev>,
  ): this {
    return super.once(ev, listener as UntypedListener);
  }

  // ——— called by the connection / namespace / adapter ———

  /**
   * Connection state recovery (called before the middleware when the server enables it):
   * a restored socket takes back its rooms and `data`, and keeps the missed packets to
   * replay once connected; a new one gets a fresh private session id.
   */
  recover(session: RecoveredSession | undefined): void {
    if (session === undefined) {
      this.recovery = { pid: randomId(), recovered: false, missed: undefined, mark: undefined };
      return;
    }
    this.recovery = {
      pid: session.pid,
      recovered: true,
      missed: session.missedPackets,
      mark: this.nsp.adapter.recoveryMark?.(),
    };
    this.dataValue = session.data as SocketData;
    if (session.rooms.length > 0) this.join(session.rooms);
  }

  /** Joins its own room and confirms the CONNECT to the client. */
  onConnect(): void {
    this.connected = true;
    this.nsp.adapter.addAll(this.id, [this.id]);
    const recovery = this.recovery;
    if (recovery !== undefined) {
      const adapter = this.nsp.adapter;
      const restoredAt = recovery.mark;
      // From here on every recoverable packet for this socket is delivered or kept.
      recovery.mark = adapter.recoveryMark?.();
      if (
        recovery.missed !== undefined &&
        restoredAt !== undefined &&
        restoredAt !== recovery.mark &&
        adapter.missedSince !== undefined
      ) {
        // Restored, then its middleware ran while broadcasts went on: they are kept, and
        // replayed after the ones the restore found.
        const meanwhile = adapter.missedSince(restoredAt, [...this.rooms]);
        if (meanwhile !== undefined) recovery.missed.push(...meanwhile);
      }
      this.client.writePacket(
        {
          type: PacketType.CONNECT,
          nsp: this.nsp.name,
          data: { sid: this.id, pid: recovery.pid },
        },
        false,
        true,
      );
      const missed = recovery.missed;
      recovery.missed = undefined;
      // Replayed before anything else can be written to the socket (its `connection`
      // listeners run after this), in order, each with its offset still last.
      if (missed !== undefined) {
        for (const data of missed) {
          this.client.writePacket(
            { type: PacketType.EVENT, nsp: this.nsp.name, data },
            false,
            true,
          );
        }
      }
      return;
    }
    const text = this.nsp.connectText(this.id);
    if (text !== undefined) this.client.writeText(text, false, true);
    else {
      this.client.writePacket(
        { type: PacketType.CONNECT, nsp: this.nsp.name, data: { sid: this.id } },
        false,
        true,
      );
    }
  }

  /** A decoded packet addressed to this socket. */
  onPacket(packet: SocketPacket): void {
    if (!this.connected) return;
    switch (packet.type) {
      case PacketType.EVENT:
      case PacketType.BINARY_EVENT:
        this.onEvent(packet);
        return;
      case PacketType.ACK:
      case PacketType.BINARY_ACK:
        this.onAck(packet);
        return;
      case PacketType.DISCONNECT:
        this.onClose("client namespace disconnect");
        return;
      default:
        return;
    }
  }

  expectAck(id: number, callback: (...args: unknown[]) => void): void {
    this.acks.set(id, callback);
  }

  /** The connection middleware refused the socket: forget the rooms it joined meanwhile. */
  onRefused(): void {
    this.end();
    this.nsp.adapter.delAll(this.id);
  }

  /** No more rooms, and no longer counted among the sockets with outgoing listeners. */
  private end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.anyOut !== undefined) this.nsp.outgoingListeners--;
  }

  /** Leaves every room and tells listeners; runs once. */
  onClose(reason: DisconnectReason, description?: unknown): void {
    if (!this.connected) return;
    this.safeEmit("disconnecting", reason, description);
    if (this.recovery !== undefined && RECOVERABLE_DISCONNECT_REASONS.has(reason)) this.persist();
    this.end();
    this.nsp.adapter.delAll(this.id);
    this.nsp.remove(this);
    this.client.remove(this);
    this.connected = false;
    this.ackMap = undefined;
    this.safeEmit("disconnect", reason, description);
  }

  /** Hands the socket's state to the adapter, to be restored if the client comes back in time. */
  private persist(): void {
    const adapter = this.nsp.adapter;
    if (adapter.persistSession === undefined) return;
    try {
      const done = adapter.persistSession({
        sid: this.id,
        pid: this.recovery!.pid,
        rooms: [...this.rooms],
        data: this.data,
        ...(this.recovery!.mark === undefined ? {} : { mark: this.recovery!.mark }),
      });
      // A failed save only means the client cannot recover; never an unhandled rejection.
      if (done !== undefined) Promise.resolve(done).catch(noop);
    } catch {
      // Same: the client gets a fresh session when it comes back.
    }
  }

  /** Reports an error to the socket's `error` listeners (never throws). */
  onError(err: Error): void {
    if (this.listenerCount("error") > 0) {
      try {
        super.emit("error", err);
        return;
      } catch {
        // A throwing error listener is reported below like any other.
      }
    }
    if (!warnedUnhandled) {
      warnedUnhandled = true;
      process.emitWarning(
        `unhandled socket error (further ones are only counted): ${err.message}`,
        "SwitchyardWarning",
      );
    }
  }

  private onEvent(packet: SocketPacket): void {
    const args = packet.data as unknown[];
    if (packet.id !== undefined) args.push(this.ackFor(packet.id));
    if (this.anyIn !== undefined) {
      for (const l of [...this.anyIn]) {
        try {
          l.apply(this, args);
        } catch (err) {
          this.nsp.counters.handlerErrors++;
          this.onError(err as Error);
        }
      }
    }
    if (this.fns === undefined) this.dispatch(args);
    else this.runMiddleware(args, 0);
  }

  private runMiddleware(args: unknown[], i: number): void {
    const fns = this.fns!;
    if (i >= fns.length) {
      this.dispatch(args);
      return;
    }
    let called = false;
    const next = (err?: Error) => {
      if (called) return;
      called = true;
      if (err !== undefined && err !== null) {
        this.nsp.counters.middlewareErrors++;
        this.onError(err);
        return;
      }
      if (this.connected) this.runMiddleware(args, i + 1);
    };
    try {
      fns[i]!(args, next);
    } catch (err) {
      next(err as Error);
    }
  }

  private dispatch(args: unknown[]): void {
    const ev = args[0] as string;
    const schema = this.nsp.validatorFor(ev);
    if (schema === undefined) {
      this.callListeners(args);
      return;
    }
    const last = args[args.length - 1];
    const ack = typeof last === "function" ? (last as Ack) : undefined;
    const payload = args.slice(1, ack === undefined ? args.length : -1);
    validateArgs(schema, ev, payload, (result) => {
      if (!this.connected) return;
      if (result.ok) {
        this.callListeners(ack === undefined ? [ev, ...result.args] : [ev, ...result.args, ack]);
        return;
      }
      this.nsp.counters.validationFailures++;
      if (ack !== undefined) ack(result.error);
      else
        this.client.writePacket(
          {
            type: PacketType.EVENT,
            nsp: this.nsp.name,
            data: [VALIDATION_ERROR_EVENT, result.error],
          },
          false,
          true,
        );
    });
  }

  /**
   * Listeners run on the next tick, and only if the socket is still connected then: an
   * event that arrives together with the client's DISCONNECT (`emit(); disconnect()` in
   * one read) is not dispatched to a socket that has already left, as in socket.io
   * (whose catch-all listeners, like ours, still see it).
   */
  private callListeners(args: unknown[]): void {
    process.nextTick(Socket.emitIfConnected, this, args);
  }

  private static emitIfConnected(socket: Socket, args: unknown[]): void {
    if (!socket.connected) return;
    try {
      EventEmitter.prototype.emit.apply(socket, args as [string, ...unknown[]]);
    } catch (err) {
      socket.nsp.counters.handlerErrors++;
      socket.onError(err as Error);
    }
  }

  private ackFor(id: number): Ack {
    let sent = false;
    return (...args: unknown[]) => {
      if (sent || !this.connected) return;
      this.client.writePacket(
        { type: PacketType.ACK, nsp: this.nsp.name, id, data: args },
        false,
        true,
      );
      // Only now: if the answer could not be encoded (the write threw), the handler
      // may still answer with something else, as in socket.io.
      sent = true;
    };
  }

  private onAck(packet: SocketPacket): void {
    const id = packet.id;
    if (id === undefined) return;
    const acks = this.ackMap;
    const ack = acks?.get(id);
    if (ack === undefined) return;
    acks!.delete(id);
    this.nsp.counters.acksReceived++;
    try {
      ack.apply(this, packet.data as unknown[]);
    } catch (err) {
      this.nsp.counters.handlerErrors++;
      this.onError(err as Error);
    }
  }

  private safeEmit(
    ev: "disconnecting" | "disconnect",
    reason: DisconnectReason,
    description: unknown,
  ): void {
    try {
      super.emit(ev, reason, description);
    } catch (err) {
      this.nsp.counters.handlerErrors++;
      this.onError(err as Error);
    }
  }
}

function removeListener(
  list: UntypedListener[] | undefined,
  listener?: UntypedListener,
): UntypedListener[] | undefined {
  if (list === undefined || listener === undefined) return undefined;
  const i = list.indexOf(listener);
  if (i !== -1) list.splice(i, 1);
  return list.length === 0 ? undefined : list;
}
