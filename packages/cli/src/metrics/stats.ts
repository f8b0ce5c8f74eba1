/**
 * One reader of the counters the server already keeps (`io.engine.stats`, `io.stats`,
 * `bus.stats`, the outbox, cluster adapters), shared by `/metrics` and the dashboard so both
 * show the same numbers. Nothing here patches the hot path: the only listener added per
 * session is the engine's public `message` event (counted by one function per reader, not
 * a closure per connection), the rest is read when a scrape or a dashboard sample asks.
 */
import type { Bus, ClusterAdapter, Namespace, Server, Session } from "@switchyard/server";
import { EngineErrorCode } from "@switchyard/server";

/** Engine.IO refusal codes by number, for labels ("BAD_REQUEST", …). */
export const ENGINE_ERROR_NAMES: Readonly<Record<number, string>> = Object.freeze(
  Object.fromEntries(Object.entries(EngineErrorCode).map(([name, code]) => [code, name])),
);

/** One entry of the recent-errors list (dashboard). */
export interface RecentError {
  /** Epoch milliseconds. */
  time: number;
  /** A stable code: an Engine.IO refusal name, a `SY_ERR_*` code, a bus event, an auth code. */
  code: string;
  message: string;
}

/** Most recent errors kept for the dashboard. */
export const RECENT_ERRORS = 50;

type AnyNamespace = Namespace;

/** Whether an adapter is a cluster adapter (has a bus and node membership). */
function asCluster(adapter: unknown): ClusterAdapter | undefined {
  const a = adapter as Partial<ClusterAdapter> | undefined;
  return a !== undefined && typeof a.liveNodes === "function" && typeof a.uid === "string"
    ? (a as ClusterAdapter)
    : undefined;
}

/** Size in bytes of an Engine.IO message's data (string as UTF-8). */
function messageSize(data: unknown): number {
  if (typeof data === "string") return Buffer.byteLength(data);
  if (data instanceof Uint8Array) return data.byteLength;
  if (data instanceof ArrayBuffer) return data.byteLength;
  return 0;
}

/**
 * Reads the server's counters; one per `Server` (see {@link statsFor}), so metrics and the
 * dashboard share the incoming-message counters and the recent-errors list.
 */
export class ServerStatsReader {
  readonly io: Server;
  /** Engine.IO message packets received from clients. */
  packetsIn = 0;
  /** Their payload bytes (strings counted as UTF-8). */
  bytesIn = 0;
  /** Errors counted by code (engine refusals, bus events, what other areas report). */
  readonly errorsByCode = new Map<string, number>();
  /**
   * Codes the other areas count in their own series (auth refusals, policy disconnects):
   * listed by the dashboard with the errors, kept out of `switchyard_errors_total`.
   */
  readonly areaCodes = new Map<string, number>();
  /** The last {@link RECENT_ERRORS} errors, oldest first. */
  readonly recentErrors: RecentError[] = [];
  /** Bus `up`/`down` transitions seen since this reader was created. */
  readonly busTransitions = { up: 0, down: 0 };
  private readonly namespaces = new Map<string, AnyNamespace>();
  private readonly buses = new Set<Bus>();
  private readonly detach: (() => void)[] = [];
  private closed = false;
  /** Users of this reader ({@link statsFor} adds one, {@link release} removes one). */
  private refs = 0;

  constructor(io: Server) {
    this.io = io;
    const onMessage = (data: unknown): void => {
      this.packetsIn++;
      this.bytesIn += messageSize(data);
    };
    const onConnection = (session: Session): void => {
      session.on("message", onMessage);
    };
    const onConnectionError = (err: { code: number; message?: string }): void => {
      this.reportError(
        `ENGINE_${ENGINE_ERROR_NAMES[err.code] ?? String(err.code)}`,
        err.message ?? "",
      );
    };
    const onNamespace = (nsp: AnyNamespace): void => {
      this.namespaces.set(nsp.name, nsp);
    };
    io.engine.on("connection", onConnection);
    io.engine.on("connection_error", onConnectionError);
    for (const session of io.engine.sessions.values()) session.on("message", onMessage);
    io.on("new_namespace", onNamespace as (nsp: unknown) => void);
    this.namespaces.set("/", io.of("/") as unknown as AnyNamespace);
    this.detach.push(() => {
      io.engine.off("connection", onConnection);
      io.engine.off("connection_error", onConnectionError);
      io.off("new_namespace", onNamespace as (nsp: unknown) => void);
      for (const session of io.engine.sessions.values()) session.off("message", onMessage);
    });
  }

  /** Watches a bus for up/down transitions and errors (idempotent per bus). */
  watchBus(bus: Bus): void {
    if (this.buses.has(bus)) return;
    this.buses.add(bus);
    const onUp = (): void => {
      this.busTransitions.up++;
    };
    const onDown = (err: Error | undefined): void => {
      this.busTransitions.down++;
      this.reportError("BUS_DOWN", err?.message ?? "bus down");
    };
    const onError = (err: Error): void => {
      const code = (err as { code?: unknown }).code;
      this.reportError(typeof code === "string" ? code : "BUS_ERROR", err.message);
    };
    bus.on("up", onUp);
    bus.on("down", onDown);
    bus.on("error", onError);
    this.detach.push(() => {
      bus.off("up", onUp);
      bus.off("down", onDown);
      bus.off("error", onError);
    });
  }

  /** Also reads a namespace that existed before this reader (new ones are seen on creation). */
  addNamespace(name: string): void {
    this.namespaces.set(name, this.io.of(name) as unknown as AnyNamespace);
  }

  /**
   * Adds the namespaces serve declared before the installers ran (`config.namespaces.names`,
   * read structurally so this area does not depend on the core's config type).
   */
  addConfiguredNamespaces(config: unknown): void {
    const names = (config as { namespaces?: { names?: unknown } } | undefined)?.namespaces?.names;
    if (!Array.isArray(names)) return;
    for (const name of names) if (typeof name === "string") this.addNamespace(name);
  }

  /** Notes a code another area already counts in its own series (dashboard only). */
  noteAreaCode(code: string, message: string): void {
    if (this.closed) return;
    this.areaCodes.set(code, (this.areaCodes.get(code) ?? 0) + 1);
    this.pushRecent(code, message);
  }

  private pushRecent(code: string, message: string): void {
    this.recentErrors.push({ time: Date.now(), code, message: message.slice(0, 300) });
    if (this.recentErrors.length > RECENT_ERRORS) this.recentErrors.shift();
  }

  /** Counts an error by its stable code and keeps it in the recent list. */
  reportError(code: string, message: string): void {
    if (this.closed) return;
    this.errorsByCode.set(code, (this.errorsByCode.get(code) ?? 0) + 1);
    this.pushRecent(code, message);
  }

  /** Open Engine.IO sessions by current transport. */
  connectionsByTransport(): Map<string, number> {
    const out = new Map<string, number>([
      ["polling", 0],
      ["websocket", 0],
    ]);
    for (const session of this.io.engine.sessions.values()) {
      const name = session.transport.name;
      out.set(name, (out.get(name) ?? 0) + 1);
    }
    return out;
  }

  /** Known namespaces (those created before the reader only if given to {@link addNamespace}). */
  namespaceList(): AnyNamespace[] {
    return [...this.namespaces.values()];
  }

  /** Connected sockets of this node by namespace. */
  socketsByNamespace(): Map<string, number> {
    const out = new Map<string, number>();
    for (const nsp of this.namespaces.values()) out.set(nsp.name, nsp.sockets.size);
    return out;
  }

  /** Number of rooms of this node by namespace (own-id rooms left out), without listing them. */
  roomCounts(): Map<string, number> {
    const out = new Map<string, number>();
    for (const nsp of this.namespaces.values()) {
      let n = 0;
      for (const [room, members] of nsp.adapter.rooms)
        if (!(typeof room === "string" && nsp.adapter.sids.has(room) && members.has(room))) n++;
      out.set(nsp.name, n);
    }
    return out;
  }

  /**
   * Rooms of this node by namespace with their local sizes (a socket's own-id room is left
   * out), largest first, at most `limit` per namespace.
   */
  rooms(
    limit: number,
  ): { namespace: string; total: number; rooms: { name: string; size: number }[] }[] {
    const out = [];
    for (const nsp of this.namespaces.values()) {
      const rooms: { name: string; size: number }[] = [];
      for (const [room, members] of nsp.adapter.rooms) {
        if (typeof room === "string" && nsp.adapter.sids.has(room) && members.has(room)) continue;
        rooms.push({ name: String(room), size: members.size });
      }
      rooms.sort((a, b) => b.size - a.size || (a.name < b.name ? -1 : 1));
      out.push({ namespace: nsp.name, total: rooms.length, rooms: rooms.slice(0, limit) });
    }
    return out;
  }

  /** The cluster adapter of each namespace that has one. */
  clusterAdapters(): { namespace: string; adapter: ClusterAdapter }[] {
    const out = [];
    for (const nsp of this.namespaces.values()) {
      const adapter = asCluster(nsp.adapter);
      if (adapter !== undefined) out.push({ namespace: nsp.name, adapter });
    }
    return out;
  }

  /** @internal One more user ({@link statsFor}). */
  acquire(): void {
    this.refs++;
  }

  /** One user is done; the last one stops the listening (the counters keep their values). */
  release(): void {
    if (this.refs > 0 && --this.refs === 0) this.close();
  }

  /** Stops listening at once, whoever still uses it (the counters keep their values). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const fn of this.detach.splice(0)) fn();
    readers.delete(this.io);
  }
}

const readers = new WeakMap<Server, ServerStatsReader>();

/** The one reader of a server (created on first use); call `release()` when done with it. */
export function statsFor(io: Server): ServerStatsReader {
  let reader = readers.get(io);
  if (reader === undefined) {
    reader = new ServerStatsReader(io);
    readers.set(io, reader);
  }
  reader.acquire();
  return reader;
}
