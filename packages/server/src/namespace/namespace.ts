/**
 * A namespace: its sockets, its adapter (rooms, broadcast), its connection middleware,
 * and the broadcast API of socket.io's `Namespace`.
 */
import { EventEmitter } from "node:events";
import { encodeSocketPacket, PacketType, type SocketPacket } from "@switchyard/protocol";
import type {
  Adapter,
  AdapterConstructor,
  AdapterNamespace,
  RecoveredSession,
  RecoveryMissReason,
  RecoveryOptions,
  Room,
  SocketId,
} from "../adapter/adapter.js";
import type { RemoteSocket } from "../adapter/remote-socket.js";
import { isSocketIoAdapter, type SocketIoServerView } from "../adapter/socketio-adapter.js";
import { BroadcastOperator } from "../broadcast/broadcast-operator.js";
import { EncodedPacket } from "../broadcast/encoded-packet.js";
import { randomId } from "../engine/session-id.js";
import { ErrorCode, SwitchyardError } from "../errors.js";
import type {
  BroadcastAckResult,
  DecorateBroadcastAcknowledgements,
  DefaultEventsMap,
  EventNames,
  EventNamesWithAck,
  EventParams,
  EventParamsWithoutAck,
  EventsMap,
  NamespaceReservedEvents,
  ReservedOrUserEventNames,
  ReservedOrUserListener,
  UntypedListener,
} from "../typed-events.js";
import { SocketHandshake } from "./handshake.js";
import { type ConnectMiddleware, runMiddleware } from "./middleware.js";
import type { Codec } from "./parser.js";
import { countMiss, type RecoveryCounters, recoveryRequest, restore } from "./recovery.js";
import { Socket, type SocketConnection, type SocketCounters } from "./socket.js";
import type { StandardSchemaV1 } from "./validation.js";

/** What a namespace needs from its server. */
export interface NamespaceHost {
  readonly codec: Codec;
  readonly counters: SocketCounters & RecoveryCounters & { connectRefusals: number };
  readonly adapterConstructor: AdapterConstructor;
  /** `connectionStateRecovery` as resolved; undefined when off. */
  readonly recovery: RecoveryOptions | undefined;
  /** A child namespace lost its last socket. */
  onNamespaceEmpty(nsp: { readonly name: string }): void;
  /** socket.io-adapter contract: what `nsp.server` returns (the public Server). */
  readonly server: SocketIoServerView;
}

/** The connection as a namespace sees it when adding a socket. */
export interface NamespaceClient extends SocketConnection {
  readonly remoteAddress: string;
  isOpen(): boolean;
  /** Sends CONNECT_ERROR for a refused namespace connection. */
  refuse(nsp: string, message: string, data?: unknown): void;
  /** The CONNECT to namespace `nsp` is settled: `socket` joined, or undefined (refused). */
  added(nsp: string, socket: Socket | undefined): void;
}

export class Namespace<
    ListenEvents extends EventsMap = DefaultEventsMap,
    EmitEvents extends EventsMap = ListenEvents,
    ServerSideEvents extends EventsMap = DefaultEventsMap,
    // biome-ignore lint/suspicious/noExplicitAny: socket.io's default, so apps that never declare SocketData compile unchanged
    SocketData = any,
  >
  extends EventEmitter
  implements AdapterNamespace
{
  readonly name: string;
  /** Connected sockets by id. */
  readonly sockets = new Map<
    SocketId,
    Socket<ListenEvents, EmitEvents, ServerSideEvents, SocketData>
  >();
  adapter: Adapter;
  protected readonly host: NamespaceHost;
  protected fns: ConnectMiddleware<
    Socket<ListenEvents, EmitEvents, ServerSideEvents, SocketData>
  >[] = [];
  /** Sockets with `onAnyOutgoing` listeners (kept by the sockets; read by adapters). */
  outgoingListeners = 0;
  private ids = 0;
  /** Sockets whose connection middleware is still running. */
  private pending = 0;
  /** The CONNECT reply up to the socket id (default codec only), built on first use. */
  private connectHead: string | undefined = undefined;
  private validators: Map<string, StandardSchemaV1> | undefined;
  /**
   * The parent of a dynamic child namespace: its schemas apply to the child too, looked
   * up live so a schema registered on the parent after the child exists still applies.
   */
  private schemaParent: { validatorFor(event: string): StandardSchemaV1 | undefined } | undefined;

  /**
   * @param adapter builds this namespace's adapter; defaults to the server's adapter
   *   class (a parent of dynamic namespaces passes its own, so no cluster adapter with
   *   bus subscriptions is created for a namespace no client can join)
   */
  constructor(host: NamespaceHost, name: string, adapter?: (nsp: Namespace) => Adapter) {
    super();
    this.host = host;
    this.name = name;
    this.adapter =
      adapter === undefined
        ? new host.adapterConstructor(this)
        : adapter(this as unknown as Namespace);
  }

  get counters(): SocketCounters {
    return this.host.counters;
  }

  /** Registers connection middleware: `(socket, next) => next(err?)`; an error refuses the connection. */
  use(fn: ConnectMiddleware<Socket<ListenEvents, EmitEvents, ServerSideEvents, SocketData>>): this {
    this.fns.push(fn);
    return this;
  }

  /**
   * Extension: validates the arguments of `event` (ack excluded, as an array) with a
   * Standard Schema validator before any listener sees them.
   */
  schema(event: EventNames<ListenEvents> & string, schema: StandardSchemaV1): this {
    if (this.validators === undefined) this.validators = new Map();
    this.validators.set(event, schema);
    return this;
  }

  validatorFor(event: string): StandardSchemaV1 | undefined {
    return this.validators?.get(event) ?? this.schemaParent?.validatorFor(event);
  }

  /** Makes `parent`'s schemas apply to this (child) namespace where it has none of its own. */
  inheritSchemas(parent: { validatorFor(event: string): StandardSchemaV1 | undefined }): void {
    this.schemaParent = parent;
  }

  // ——— AdapterNamespace ———

  encode(packet: SocketPacket): EncodedPacket {
    return new EncodedPacket(this.host.codec.encode(packet));
  }

  nextAckId(): number {
    return this.ids++;
  }

  connectText(sid: SocketId): string | undefined {
    let head = this.connectHead;
    if (head === undefined) {
      if (this.host.codec.encode !== encodeSocketPacket) return undefined;
      // Encoded once with an empty sid (which also validates the name, as every encode
      // would): `0{"sid":""}` or `0/nsp,{"sid":""}`. A socket id is base64url, which
      // JSON.stringify writes as is, so the reply is the head, the id and `"}`.
      const probe = encodeSocketPacket({
        type: PacketType.CONNECT,
        nsp: this.name,
        data: { sid: "" },
      });
      head = probe[0].slice(0, -2);
      this.connectHead = head;
    }
    return `${head}${sid}"}`;
  }

  onServerSideEmit(args: unknown[]): void {
    super.emit(args[0] as string, ...args.slice(1));
  }

  get recovery(): RecoveryOptions | undefined {
    return this.host.recovery;
  }

  recoveryMiss(reason: RecoveryMissReason): void {
    countMiss(this.host.counters, reason);
  }

  // ——— socket.io-adapter contract ———
  // Read by socket.io-adapter's classes (see adapter/socketio-adapter.ts); prototype
  // accessors, nothing per namespace or socket.

  /** socket.io-adapter contract: the server (`encoder`, `opts`). */
  get server(): SocketIoServerView {
    return this.host.server;
  }

  /** socket.io-adapter contract: the ack id counter, shared with {@link nextAckId}. */
  get _ids(): number {
    return this.ids;
  }

  set _ids(value: number) {
    this.ids = value;
  }

  /** socket.io-adapter contract: a `serverSideEmit` from another node. */
  _onServerSideEmit(args: unknown[]): void {
    this.onServerSideEmit(args);
  }

  // ——— broadcast API ———

  private op(): BroadcastOperator<EmitEvents, SocketData> {
    return new BroadcastOperator(this.adapter, this.name);
  }

  to(room: Room | readonly Room[]): BroadcastOperator<EmitEvents, SocketData> {
    return this.op().to(room);
  }

  in(room: Room | readonly Room[]): BroadcastOperator<EmitEvents, SocketData> {
    return this.op().to(room);
  }

  except(room: Room | readonly Room[]): BroadcastOperator<EmitEvents, SocketData> {
    return this.op().except(room);
  }

  /** Emits to every socket of the namespace. */
  override emit<Ev extends EventNames<EmitEvents>>(
    ev: Ev,
    ...args: EventParams<EmitEvents, Ev>
  ): boolean {
    if (ev === "newListener" || ev === "removeListener") return super.emit(ev, ...args);
    return this.op().emit(ev, ...args);
  }

  emitWithAck<Ev extends EventNamesWithAck<EmitEvents>>(
    ev: Ev,
    ...args: EventParamsWithoutAck<EmitEvents, Ev>
  ): Promise<BroadcastAckResult<EmitEvents, Ev>> {
    return this.op().emitWithAck(ev, ...args);
  }

  send(...args: unknown[]): this {
    (this.op() as BroadcastOperator).emit("message", ...args);
    return this;
  }

  write(...args: unknown[]): this {
    return this.send(...args);
  }

  compress(compress: boolean): BroadcastOperator<EmitEvents, SocketData> {
    return this.op().compress(compress);
  }

  get volatile(): BroadcastOperator<EmitEvents, SocketData> {
    return this.op().volatile;
  }

  get local(): BroadcastOperator<EmitEvents, SocketData> {
    return this.op().local;
  }

  timeout(
    ms: number,
  ): BroadcastOperator<DecorateBroadcastAcknowledgements<EmitEvents>, SocketData> {
    return this.op().timeout(ms);
  }

  allSockets(): Promise<Set<SocketId>> {
    return this.op().allSockets();
  }

  fetchSockets(): Promise<RemoteSocket<EmitEvents, SocketData>[]> {
    return this.op().fetchSockets();
  }

  socketsJoin(room: Room | readonly Room[]): void {
    this.op().socketsJoin(room);
  }

  socketsLeave(room: Room | readonly Room[]): void {
    this.op().socketsLeave(room);
  }

  disconnectSockets(close = false): void {
    this.op().disconnectSockets(close);
  }

  /** Emits to the same namespace on the other nodes of a cluster (a trailing callback gathers acks). */
  serverSideEmit<Ev extends EventNames<ServerSideEvents>>(
    ev: Ev,
    ...args: EventParams<ServerSideEvents, Ev>
  ): boolean {
    assertNotNamespaceReserved(ev);
    this.adapter.serverSideEmit([ev, ...args]);
    return true;
  }

  /** {@link serverSideEmit} resolving with the other nodes' responses. */
  serverSideEmitWithAck(ev: EventNames<ServerSideEvents>, ...args: unknown[]): Promise<unknown[]> {
    assertNotNamespaceReserved(ev);
    return new Promise((resolve, reject) => {
      this.adapter.serverSideEmit([
        ev,
        ...args,
        (err: Error | null, responses: unknown[]) => (err ? reject(err) : resolve(responses)),
      ]);
    });
  }

  // ——— typed listener registration ———

  override on<
    Ev extends ReservedOrUserEventNames<
      NamespaceReservedEvents<Socket<ListenEvents, EmitEvents, ServerSideEvents, SocketData>>,
      ServerSideEvents
    >,
  >(
    ev: Ev,
    listener: ReservedOrUserListener<
      NamespaceReservedEvents<Socket<ListenEvents, EmitEvents, ServerSideEvents, SocketData>>,
      ServerSideEvents,
      Ev
    >,
  ): this {
    return super.on(ev, listener as UntypedListener);
  }

  override once<
    Ev extends ReservedOrUserEventNames<
      NamespaceReservedEvents<Socket<ListenEvents, EmitEvents, ServerSideEvents, SocketData>>,
      ServerSideEvents
    >,
  >(
    ev: Ev,
    listener: ReservedOrUserListener<
      NamespaceReservedEvents<Socket<ListenEvents, EmitEvents, ServerSideEvents, SocketData>>,
      ServerSideEvents,
      Ev
    >,
  ): this {
    return super.once(ev, listener as UntypedListener);
  }

  // ——— connection of sockets (called by the connection) ———

  /**
   * Runs the middleware for a new socket; on success it joins and `connection` fires.
   * `auth` is the CONNECT payload, undefined if the client sent none (`handshake.auth`
   * then reads `{}`). The outcome goes to `client.added()`.
   */
  add(client: NamespaceClient, auth: Record<string, unknown> | undefined): void {
    const request = this.host.recovery === undefined ? undefined : recoveryRequest(auth);
    if (request === undefined) {
      this.addSocket(client, auth, undefined);
      return;
    }
    // Connection state recovery: the adapter finds the session (or not) first.
    this.pending++;
    restore(this.adapter, request.pid, request.offset, this.host.counters, (session) => {
      this.pending--;
      if (session !== undefined && this.sockets.has(session.sid)) {
        // Its socket id is in use again (cannot happen with our adapters): a fresh session.
        this.host.counters.recoveryMisses++;
        countMiss(this.host.counters, "unknown-session");
        session = undefined;
      } else if (session !== undefined) this.host.counters.recovered++;
      this.addSocket(client, auth, session);
    });
  }

  /**
   * A new socket's handshake; with a socket.io adapter, in the plain-object form its
   * encoders can copy to other nodes (see {@link SocketHandshake.materialize}).
   */
  private handshakeFor(
    client: NamespaceClient,
    auth: Record<string, unknown> | undefined,
  ): SocketHandshake {
    const handshake = new SocketHandshake(client.conn.requestInfo, client.remoteAddress, auth);
    return isSocketIoAdapter(this.adapter) ? handshake.materialize() : handshake;
  }

  /** Creates the socket (restored from `session` if given) and runs the middleware. */
  private addSocket(
    client: NamespaceClient,
    auth: Record<string, unknown> | undefined,
    session: RecoveredSession | undefined,
  ): void {
    const socket = new Socket<ListenEvents, EmitEvents, ServerSideEvents, SocketData>(
      session === undefined ? randomId() : session.sid,
      this,
      client,
      this.handshakeFor(client, auth),
    );
    if (this.host.recovery !== undefined) socket.recover(session);
    const fns = this.fns;
    // No middleware (the common case), or a recovered socket that skips it: admitted at
    // once, no callback chain.
    if (fns.length === 0 || (session !== undefined && this.host.recovery?.skipMiddlewares === true))
      this.admit(client, socket, undefined);
    else {
      this.pending++;
      runMiddleware(fns, socket, (err) => {
        this.pending--;
        this.admit(client, socket, err);
      });
    }
  }

  /**
   * Tells the server when this namespace holds no socket and none is on its way in, so
   * (with `cleanupEmptyChildNamespaces`) a dynamic child that only refused clients
   * tried, or whose client left before joining, is not kept.
   */
  checkEmpty(): void {
    if (this.sockets.size === 0 && this.pending === 0) this.host.onNamespaceEmpty(this);
  }

  /** The middleware ran: the socket joins, or is refused with `err`. */
  private admit(
    client: NamespaceClient,
    socket: Socket<ListenEvents, EmitEvents, ServerSideEvents, SocketData>,
    err: (Error & { data?: unknown }) | undefined,
  ): void {
    if (!client.isOpen()) {
      socket.onRefused();
      client.added(this.name, undefined);
      this.checkEmpty();
      return;
    }
    if (err !== undefined) {
      // Middleware may have joined rooms (allowed, as in socket.io): undo that.
      socket.onRefused();
      this.host.counters.connectRefusals++;
      client.refuse(this.name, err.message, err.data);
      client.added(this.name, undefined);
      this.checkEmpty();
      return;
    }
    this.sockets.set(socket.id, socket);
    socket.onConnect();
    client.added(this.name, socket);
    this.emitLocal("connect", socket);
    this.emitLocal("connection", socket);
  }

  private emitLocal(
    ev: string,
    socket: Socket<ListenEvents, EmitEvents, ServerSideEvents, SocketData>,
  ): void {
    try {
      super.emit(ev, socket);
    } catch (err) {
      this.host.counters.handlerErrors++;
      socket.onError(err as Error);
    }
  }

  remove(socket: { readonly id: SocketId }): void {
    if (this.sockets.delete(socket.id)) this.checkEmpty();
  }
}

/**
 * Names a `serverSideEmit` may not use: on the receiving node they would be emitted on
 * the namespace as if the server itself had fired them (socket.io refuses them too).
 */
const NAMESPACE_RESERVED_EVENTS: ReadonlySet<unknown> = new Set([
  "connect",
  "connection",
  "new_namespace",
]);

function assertNotNamespaceReserved(ev: unknown): void {
  if (NAMESPACE_RESERVED_EVENTS.has(ev)) {
    throw new SwitchyardError(ErrorCode.RESERVED_EVENT, `"${String(ev)}" is a reserved event name`);
  }
}
