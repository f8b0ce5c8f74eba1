/**
 * The Socket.IO v4-compatible `Server`: namespaces (static and dynamic), connection
 * middleware, the broadcast API of the main namespace, and the lifecycle. Migrating a
 * socket.io app means changing its import.
 */
import { EventEmitter } from "node:events";
import {
  createServer,
  type Server as HttpServer,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";
import type { SocketPacket } from "@switchyard/protocol";
import type { AdapterConstructor, RecoveryOptions, Room, SocketId } from "./adapter/adapter.js";
import type { RemoteSocket } from "./adapter/remote-socket.js";
import {
  type AdapterFactory,
  type SocketIoServerView,
  toAdapterConstructor,
} from "./adapter/socketio-adapter.js";
import type { BroadcastOperator } from "./broadcast/broadcast-operator.js";
import { Engine } from "./engine/engine.js";
import type { Session } from "./engine/session.js";
import { InvalidOptionError } from "./errors.js";
import { attachEngine } from "./http/attach.js";
import { serveClientFile } from "./http/serve-client.js";
import { Connection, type ConnectionHost } from "./namespace/connection.js";
import type { ConnectMiddleware } from "./namespace/middleware.js";
import { Namespace, type NamespaceHost } from "./namespace/namespace.js";
import { type NamespaceMatcher, ParentNamespace } from "./namespace/parent-namespace.js";
import { type Codec, toCodec } from "./namespace/parser.js";
import { type RecoveryCounters, recoveryCounters } from "./namespace/recovery.js";
import type { Socket } from "./namespace/socket.js";
import {
  type ResolvedServerOptions,
  resolveServerOptions,
  type ServerOptions,
} from "./server-options.js";
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
} from "./typed-events.js";

/** Counters of the Socket.IO layer (read by metrics). */
export interface ServerCounters extends RecoveryCounters {
  parseErrors: number;
  invalidNamespaces: number;
  unexpectedPackets: number;
  connectRefusals: number;
  validationFailures: number;
  handlerErrors: number;
  middlewareErrors: number;
  /** Client acks received for the server's emits (to one socket or a broadcast with ack). */
  acksReceived: number;
  /** Acks a client did not send in time: a `timeout()` emit to the socket, or a timed broadcast with ack (per client that did not answer). */
  ackTimeouts: number;
}

/** Shared state behind the public Server: what namespaces and connections call into. */
class ServerCore implements NamespaceHost, ConnectionHost {
  readonly codec: Codec;
  readonly counters: ServerCounters = {
    parseErrors: 0,
    invalidNamespaces: 0,
    unexpectedPackets: 0,
    connectRefusals: 0,
    validationFailures: 0,
    handlerErrors: 0,
    middlewareErrors: 0,
    acksReceived: 0,
    ackTimeouts: 0,
    ...recoveryCounters(),
  };
  readonly nsps = new Map<string, Namespace>();
  readonly parents: ParentNamespace[] = [];
  readonly emitter = new EventEmitter();
  readonly opts: ResolvedServerOptions;
  /** The public Server (`nsp.server` of the socket.io-adapter contract). */
  readonly server: SocketIoServerView;
  /** What the app gave as adapter (`io.adapter()` returns it) and how it is constructed. */
  adapterFactory: AdapterFactory;
  private adapterCtor: AdapterConstructor;

  constructor(opts: ResolvedServerOptions, server: SocketIoServerView) {
    this.opts = opts;
    this.server = server;
    this.adapterFactory = opts.adapter;
    this.adapterCtor = toAdapterConstructor(opts.adapter);
    this.codec = toCodec(opts.parser, {
      maxAttachments: opts.maxAttachments,
      maxDepth: opts.maxDepth,
    });
  }

  get adapterConstructor(): AdapterConstructor {
    return this.adapterCtor;
  }

  /**
   * `io.adapter(factory)`: every existing namespace gets a new adapter, as in socket.io;
   * unlike socket.io, its connected sockets keep their rooms (carried over from the old
   * adapter, which is then closed).
   */
  setAdapter(factory: AdapterFactory): void {
    const ctor = toAdapterConstructor(factory);
    this.adapterFactory = factory;
    this.adapterCtor = ctor;
    for (const nsp of this.nsps.values()) {
      const old = nsp.adapter;
      const next = new ctor(nsp);
      nsp.adapter = next;
      void next.init();
      for (const id of nsp.sockets.keys()) {
        const rooms = old.socketRooms(id);
        if (rooms !== undefined && rooms.size > 0) void next.addAll(id, [...rooms]);
      }
      void old.close();
    }
  }

  get recovery(): RecoveryOptions | undefined {
    return this.opts.connectionStateRecovery;
  }

  get connectTimeout(): number {
    return this.opts.connectTimeout;
  }

  createDecoder() {
    return this.codec.createDecoder();
  }

  encode(packet: SocketPacket): (string | Buffer)[] {
    return this.codec.encode(packet);
  }

  of(name: string): Namespace {
    let nsp = this.nsps.get(name);
    if (nsp === undefined) {
      // A name a RegExp parent matches is that parent's child, even when the app asks
      // for it first (to emit before anyone joined), as socket.io's of() does. Function
      // matchers answer asynchronously and per client: they only match on CONNECT.
      for (const parent of this.parents) {
        if (parent.matcher instanceof RegExp && parent.matcher.test(name)) {
          return this.createChild(parent, name);
        }
      }
      nsp = new Namespace(this, name);
      this.nsps.set(name, nsp);
      void nsp.adapter.init();
      this.emitter.emit("new_namespace", nsp);
    }
    return nsp;
  }

  private createChild(parent: ParentNamespace, name: string): Namespace {
    const child = parent.createChild(this, name);
    this.nsps.set(name, child);
    void child.adapter.init();
    this.emitter.emit("new_namespace", child);
    return child;
  }

  namespaceOf(name: string): Namespace | undefined {
    return this.nsps.get(name);
  }

  resolveNamespace(
    name: string,
    auth: Record<string, unknown> | undefined,
    done: (nsp: Namespace | undefined, auth: Record<string, unknown> | undefined) => void,
  ): void {
    const existing = this.nsps.get(name);
    if (existing !== undefined) {
      done(existing, auth);
      return;
    }
    // Dynamic namespaces' matchers get the object the socket's handshake.auth will be.
    const matched = auth ?? {};
    this.tryParents(name, matched, 0, (nsp) => done(nsp, matched));
  }

  private tryParents(
    name: string,
    auth: Record<string, unknown>,
    i: number,
    done: (nsp: Namespace | undefined) => void,
  ): void {
    const parent = this.parents[i];
    if (parent === undefined) {
      done(undefined);
      return;
    }
    parent.matches(name, auth, (ok) => {
      if (!ok) {
        this.tryParents(name, auth, i + 1, done);
        return;
      }
      done(this.nsps.get(name) ?? this.createChild(parent, name));
    });
  }

  onNamespaceEmpty(empty: { readonly name: string }): void {
    if (!this.opts.cleanupEmptyChildNamespaces) return;
    const nsp = this.nsps.get(empty.name);
    if (nsp === undefined || nsp !== empty) return;
    for (const parent of this.parents) {
      if (parent.children.delete(nsp)) {
        this.nsps.delete(nsp.name);
        void nsp.adapter.close();
        return;
      }
    }
  }

  onConnection(session: Session): void {
    // Held by the session (its sink) for as long as the session is open: no set of them.
    new Connection(this, session);
  }
}

/** socket.io accepts options in attach()/listen(); here they must go to the constructor. */
function refuseLateOptions(method: string, opts: ServerOptions | undefined): void {
  if (opts === undefined || opts === null) return;
  if (typeof opts !== "object" || Object.keys(opts).length > 0) {
    throw new InvalidOptionError(
      `${method}() options`,
      "passed to the Server constructor instead (the engine is created there)",
      opts,
    );
  }
}

let lookupNamespace: (io: Server, name: string) => Namespace | undefined;

/**
 * The namespace `name` if it exists, without creating it as `io.of()` would (for
 * bridges that read namespace names from a bus). Exported through `internal`.
 */
export function existingNamespace(io: Server, name: string): Namespace | undefined {
  return lookupNamespace(io, name);
}

export class Server<
  ListenEvents extends EventsMap = DefaultEventsMap,
  EmitEvents extends EventsMap = ListenEvents,
  ServerSideEvents extends EventsMap = DefaultEventsMap,
  // biome-ignore lint/suspicious/noExplicitAny: socket.io's default, so apps that never declare SocketData compile unchanged
  SocketData = any,
> {
  /** The Engine.IO server underneath. */
  readonly engine: Engine;
  /** The main namespace ("/"). */
  readonly sockets: Namespace<ListenEvents, EmitEvents, ServerSideEvents, SocketData>;
  /** The HTTP server this server is attached to, if any. */
  httpServer: HttpServer | undefined;
  private readonly core: ServerCore;
  private closed = false;

  static {
    lookupNamespace = (io, name) => io.core.namespaceOf(name);
  }

  /**
   * `new Server()`, `new Server(httpServer, opts)`, `new Server(port, opts)` or
   * `new Server(opts)` — as socket.io.
   */
  constructor(srv?: HttpServer | number | string | ServerOptions, opts: ServerOptions = {}) {
    let options = opts;
    let target: HttpServer | number | string | undefined;
    // A function is not options but (typically) an Express app: attach() explains.
    if (
      typeof srv === "number" ||
      typeof srv === "string" ||
      typeof srv === "function" ||
      srv instanceof EventEmitter
    )
      target = srv as HttpServer | number | string;
    else if (srv !== undefined) options = srv;
    if (typeof options !== "object" || options === null)
      throw new InvalidOptionError("options", "an object", options);
    this.core = new ServerCore(resolveServerOptions(options), this);
    this.engine = new Engine(options, { path: "/socket.io" });
    this.engine.on("connection", (session: Session) => this.core.onConnection(session));
    this.sockets = this.core.of("/") as unknown as Namespace<
      ListenEvents,
      EmitEvents,
      ServerSideEvents,
      SocketData
    >;
    if (target !== undefined) this.attach(target);
  }

  /**
   * The adapter factory of every namespace (`new Server({ adapter })`'s, MemoryAdapter by
   * default). With an argument: replaces it — a Switchyard adapter class, a
   * `socket.io-adapter` subclass, or a factory such as `createAdapter(pub, sub)` of
   * `@socket.io/redis-adapter` — and gives every existing namespace a new adapter; the
   * sockets already connected keep their rooms.
   */
  adapter(): AdapterFactory;
  adapter(factory: AdapterFactory): this;
  adapter(...args: [] | [AdapterFactory]): AdapterFactory | this {
    if (args.length === 0) return this.core.adapterFactory;
    this.core.setAdapter(args[0]);
    return this;
  }

  // ——— socket.io-adapter contract: `nsp.server.encoder` / `nsp.server.opts` ———

  /** socket.io-adapter contract: encodes a packet with the server's parser (`encode(packet) → (string | Buffer)[]`). */
  get encoder(): SocketIoServerView["encoder"] {
    return this.core;
  }

  /** socket.io-adapter contract: the resolved options (adapters read `connectionStateRecovery`). */
  get opts(): ResolvedServerOptions {
    return this.core.opts;
  }

  /** Counters of the Socket.IO layer; the engine's are in `engine.stats`. */
  get stats(): Readonly<ServerCounters> {
    return this.core.counters;
  }

  /**
   * Attaches to an HTTP server: requests under `path` are ours, the rest go to the
   * server's own listeners. A port (number or numeric string) creates the server.
   * Options belong to the constructor: unlike socket.io, the engine already exists, so
   * options given here could not apply and are refused rather than silently ignored.
   */
  attach(srv: HttpServer | number | string, opts?: ServerOptions): this {
    refuseLateOptions("attach", opts);
    if (typeof srv === "string" && /^\d+$/.test(srv)) srv = Number(srv);
    if (typeof srv === "number") {
      this.listen(srv);
      return this;
    }
    if (
      !(srv instanceof EventEmitter) ||
      typeof (srv as Partial<HttpServer>).listen !== "function"
    ) {
      // Typically an Express app (a request handler function), as socket.io warns.
      throw new InvalidOptionError(
        "srv",
        "an http.Server (for an Express app, pass createServer(app))",
        srv,
      );
    }
    this.reopen();
    const engine = this.engine;
    const path = engine.opts.path;
    const serveClient = this.core.opts.serveClient;
    this.httpServer = srv;
    attachEngine(srv, {
      handles: (req: IncomingMessage) =>
        engine.handles(req) || (serveClient && (req.url ?? "").startsWith(`${path}/socket.io.`)),
      handleRequest: (req: IncomingMessage, res: ServerResponse) => {
        if (serveClient && serveClientFile(path, req, res, engine.opts.cors)) return;
        engine.handleRequest(req, res);
      },
      handleUpgrade: (req, socket, head) => engine.handleUpgrade(req, socket, head),
      close: () => engine.close(),
    });
    return this;
  }

  /**
   * Creates an HTTP server, attaches and listens on `port` (all interfaces, or `host`:
   * a Switchyard addition; socket.io's second argument, options, is refused as in
   * {@link attach}).
   */
  listen(port: number, host?: string | ServerOptions): this {
    if (typeof host === "object") {
      refuseLateOptions("listen", host);
      host = undefined;
    }
    const srv = createServer();
    this.attach(srv);
    if (host === undefined) srv.listen(port);
    else srv.listen(port, host);
    return this;
  }

  /**
   * Returns the namespace `name` (created on first use), or with a RegExp / function
   * a parent of dynamic namespaces.
   */
  of(
    name: string | NamespaceMatcher,
    fn?: (socket: Socket<ListenEvents, EmitEvents, ServerSideEvents, SocketData>) => void,
  ): Namespace<ListenEvents, EmitEvents, ServerSideEvents, SocketData> {
    let nsp: Namespace;
    if (typeof name === "function" || name instanceof RegExp) {
      const parent = new ParentNamespace(this.core, name);
      this.core.parents.push(parent);
      nsp = parent;
    } else {
      nsp = this.core.of(name.startsWith("/") ? name : `/${name}`);
    }
    const typed = nsp as unknown as Namespace<
      ListenEvents,
      EmitEvents,
      ServerSideEvents,
      SocketData
    >;
    if (fn !== undefined) typed.on("connection", fn);
    return typed;
  }

  /** Connection middleware of the main namespace. */
  use(fn: ConnectMiddleware<Socket<ListenEvents, EmitEvents, ServerSideEvents, SocketData>>): this {
    this.sockets.use(fn);
    return this;
  }

  /**
   * Closes every connection (sockets disconnect with "server shutting down"), the
   * adapters, the engine and the HTTP server; `fn` gets the HTTP server's answer, as in
   * socket.io: an `ERR_SERVER_NOT_RUNNING` error when it was not listening. The server
   * may then serve again: `io.close(() => io.listen(port))`, or `attach()` to a server.
   */
  async close(fn?: (err?: Error) => void): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      for (const nsp of this.core.nsps.values()) {
        for (const socket of [...nsp.sockets.values()]) socket.onClose("server shutting down");
      }
      await Promise.allSettled(
        [...this.core.nsps.values()].map(async (nsp) => nsp.adapter.close()),
      );
      this.engine.close();
    }
    const srv = this.httpServer;
    if (srv === undefined) {
      fn?.();
      return;
    }
    await new Promise<void>((resolve) => {
      srv.close((err) => {
        fn?.(err);
        resolve();
      });
      srv.closeIdleConnections();
    });
  }

  /** After {@link close}: the engine takes sessions again and the adapters start anew. */
  private reopen(): void {
    if (!this.closed) return;
    this.closed = false;
    this.engine.reopen();
    for (const nsp of this.core.nsps.values()) void nsp.adapter.init();
  }

  // ——— events: `new_namespace` is the server's, the rest are the main namespace's ———

  /** `new_namespace` is the server's own event; every other one is the main namespace's. */
  on(
    ev: "new_namespace",
    listener: (nsp: Namespace<ListenEvents, EmitEvents, ServerSideEvents, SocketData>) => void,
  ): this;
  on<
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
  ): this;
  on(ev: string, listener: UntypedListener): this {
    if (ev === "new_namespace") this.core.emitter.on(ev, listener);
    else this.sockets.on(ev, listener as never);
    return this;
  }

  once<
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
    this.sockets.once(ev, listener);
    return this;
  }

  off(ev: string, listener: UntypedListener): this {
    if (ev === "new_namespace") this.core.emitter.off(ev, listener);
    else this.sockets.off(ev, listener);
    return this;
  }

  removeAllListeners(ev?: string): this {
    this.sockets.removeAllListeners(ev);
    return this;
  }

  listeners(ev: string): UntypedListener[] {
    return this.sockets.listeners(ev) as UntypedListener[];
  }

  // ——— broadcast API of the main namespace ———

  emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): boolean {
    return this.sockets.emit(ev, ...args);
  }

  emitWithAck<Ev extends EventNamesWithAck<EmitEvents>>(
    ev: Ev,
    ...args: EventParamsWithoutAck<EmitEvents, Ev>
  ): Promise<BroadcastAckResult<EmitEvents, Ev>> {
    return this.sockets.emitWithAck(ev, ...args);
  }

  send(...args: unknown[]): this {
    this.sockets.send(...args);
    return this;
  }

  write(...args: unknown[]): this {
    return this.send(...args);
  }

  to(room: Room | readonly Room[]): BroadcastOperator<EmitEvents, SocketData> {
    return this.sockets.to(room);
  }

  in(room: Room | readonly Room[]): BroadcastOperator<EmitEvents, SocketData> {
    return this.sockets.in(room);
  }

  except(room: Room | readonly Room[]): BroadcastOperator<EmitEvents, SocketData> {
    return this.sockets.except(room);
  }

  compress(compress: boolean): BroadcastOperator<EmitEvents, SocketData> {
    return this.sockets.compress(compress);
  }

  get volatile(): BroadcastOperator<EmitEvents, SocketData> {
    return this.sockets.volatile;
  }

  get local(): BroadcastOperator<EmitEvents, SocketData> {
    return this.sockets.local;
  }

  timeout(
    ms: number,
  ): BroadcastOperator<DecorateBroadcastAcknowledgements<EmitEvents>, SocketData> {
    return this.sockets.timeout(ms);
  }

  allSockets(): Promise<Set<SocketId>> {
    return this.sockets.allSockets();
  }

  fetchSockets(): Promise<RemoteSocket<EmitEvents, SocketData>[]> {
    return this.sockets.fetchSockets();
  }

  socketsJoin(room: Room | readonly Room[]): void {
    this.sockets.socketsJoin(room);
  }

  socketsLeave(room: Room | readonly Room[]): void {
    this.sockets.socketsLeave(room);
  }

  disconnectSockets(close = false): void {
    this.sockets.disconnectSockets(close);
  }

  serverSideEmit<Ev extends EventNames<ServerSideEvents>>(
    ev: Ev,
    ...args: EventParams<ServerSideEvents, Ev>
  ): boolean {
    return this.sockets.serverSideEmit(ev, ...args);
  }

  serverSideEmitWithAck(ev: EventNames<ServerSideEvents>, ...args: unknown[]): Promise<unknown[]> {
    return this.sockets.serverSideEmitWithAck(ev, ...args);
  }
}
