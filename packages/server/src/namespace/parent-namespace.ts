/**
 * Dynamic namespaces: `io.of(/^\/room-\d+$/)` or `io.of((name, auth, next) => …)`.
 * Children are created on the first matching CONNECT and inherit the parent's
 * middleware and connection listeners; broadcasts on the parent reach every child.
 */
import { EventEmitter } from "node:events";
import type { SocketPacket } from "@switchyard/protocol";
import type {
  Adapter,
  AdapterSocket,
  BroadcastOptions,
  Room,
  SocketId,
} from "../adapter/adapter.js";
import type { DefaultEventsMap, EventsMap } from "../typed-events.js";
import type { HandshakeAuth } from "./handshake.js";
import { Namespace, type NamespaceHost } from "./namespace.js";

/** Decides whether a dynamic namespace `name` may exist. */
export type NamespaceMatcher =
  | RegExp
  | ((
      name: string,
      auth: HandshakeAuth,
      next: (err: Error | null, matches: boolean) => void,
    ) => void);

let parentCount = 0;

export class ParentNamespace<
  ListenEvents extends EventsMap = DefaultEventsMap,
  EmitEvents extends EventsMap = ListenEvents,
  ServerSideEvents extends EventsMap = DefaultEventsMap,
  // biome-ignore lint/suspicious/noExplicitAny: socket.io's default, so apps that never declare SocketData compile unchanged
  SocketData = any,
> extends Namespace<ListenEvents, EmitEvents, ServerSideEvents, SocketData> {
  readonly children: Set<Namespace<ListenEvents, EmitEvents, ServerSideEvents, SocketData>>;
  readonly matcher: NamespaceMatcher;

  constructor(host: NamespaceHost, matcher: NamespaceMatcher) {
    const children = new Set<Namespace<ListenEvents, EmitEvents, ServerSideEvents, SocketData>>();
    super(host, `/_${parentCount++}`, () => new ParentBroadcastAdapter(children));
    this.children = children;
    this.matcher = matcher;
  }

  /** Whether `name` belongs to this parent; calls back asynchronously for function matchers. */
  matches(name: string, auth: Record<string, unknown>, done: (matches: boolean) => void): void {
    const m = this.matcher;
    if (m instanceof RegExp) {
      done(m.test(name));
      return;
    }
    let answered = false;
    try {
      m(name, auth, (err, ok) => {
        if (answered) return;
        answered = true;
        done(err === null && ok === true);
      });
    } catch {
      if (!answered) {
        answered = true;
        done(false);
      }
    }
  }

  /** Creates the child namespace `name` with the parent's middleware and listeners. */
  createChild(
    host: NamespaceHost,
    name: string,
  ): Namespace<ListenEvents, EmitEvents, ServerSideEvents, SocketData> {
    const child = new Namespace<ListenEvents, EmitEvents, ServerSideEvents, SocketData>(host, name);
    for (const fn of this.fns) child.use(fn);
    child.inheritSchemas(this);
    for (const ev of ["connect", "connection"] as const) {
      for (const l of this.listeners(ev)) child.on(ev, l as (socket: unknown) => void);
    }
    this.children.add(child);
    return child;
  }
}

/** Broadcasts and queries of a parent fan out to its children's adapters. */
class ParentBroadcastAdapter extends EventEmitter implements Adapter {
  readonly rooms = new Map<Room, Set<SocketId>>();
  readonly sids = new Map<SocketId, Set<Room>>();
  private readonly children: ReadonlySet<{ readonly name: string; readonly adapter: Adapter }>;

  constructor(children: ReadonlySet<{ readonly name: string; readonly adapter: Adapter }>) {
    super();
    this.children = children;
  }

  init(): void {}
  close(): void {}
  async serverCount(): Promise<number> {
    let max = 1;
    for (const c of this.children) max = Math.max(max, await c.adapter.serverCount());
    return max;
  }
  addAll(): void {}
  del(): void {}
  delAll(): void {}

  // The operator stamped the packet with the parent's (internal) name; each child's
  // clients only accept packets addressed to the child's own namespace.
  broadcast(packet: SocketPacket, opts: BroadcastOptions): void {
    for (const c of this.children) c.adapter.broadcast({ ...packet, nsp: c.name }, opts);
  }

  broadcastWithAck(
    packet: SocketPacket,
    opts: BroadcastOptions,
    clientCountCallback: (clientCount: number) => void,
    ack: (...args: unknown[]) => void,
  ): void {
    // Children may report their counts later (a cluster adapter waits for the other
    // nodes): answer once, when every child has.
    let total = 0;
    let pending = this.children.size;
    if (pending === 0) {
      clientCountCallback(0);
      return;
    }
    for (const c of this.children) {
      c.adapter.broadcastWithAck(
        { ...packet, nsp: c.name },
        opts,
        (n) => {
          total += n;
          if (--pending === 0) clientCountCallback(total);
        },
        ack,
      );
    }
  }

  async sockets(rooms: ReadonlySet<Room>): Promise<Set<SocketId>> {
    const all = new Set<SocketId>();
    for (const c of this.children) for (const id of await c.adapter.sockets(rooms)) all.add(id);
    return all;
  }

  socketRooms(): Set<Room> | undefined {
    return undefined;
  }

  async fetchSockets(opts: BroadcastOptions): Promise<AdapterSocket[]> {
    const all: AdapterSocket[] = [];
    for (const c of this.children) all.push(...(await c.adapter.fetchSockets(opts)));
    return all;
  }

  addSockets(opts: BroadcastOptions, rooms: Room[]): void {
    for (const c of this.children) c.adapter.addSockets(opts, rooms);
  }

  delSockets(opts: BroadcastOptions, rooms: Room[]): void {
    for (const c of this.children) c.adapter.delSockets(opts, rooms);
  }

  disconnectSockets(opts: BroadcastOptions, close: boolean): void {
    for (const c of this.children) c.adapter.disconnectSockets(opts, close);
  }

  serverSideEmit(args: unknown[]): void {
    const last = args[args.length - 1];
    if (typeof last === "function") process.nextTick(last, null, []);
  }
}
